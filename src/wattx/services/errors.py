"""The rules the service enforces beyond the market core, one error class each."""

from __future__ import annotations

from wattx.domain.errors import ConflictError, DomainError, NotFoundError, ValidationError


class AuthenticationError(DomainError):
    code = "unauthenticated"
    http_status = 401
    title = "Authentication required"


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"
    title = "Wrong email or password"


class InvalidTokenError(AuthenticationError):
    code = "invalid_token"
    title = "Token invalid, expired or revoked"


class RefreshTokenReusedError(AuthenticationError):
    code = "refresh_token_reused"
    title = "Refresh token already used; the session is revoked"


class WalletSignatureError(AuthenticationError):
    code = "invalid_wallet_signature"
    title = "Wallet signature or nonce rejected"


class ForbiddenError(DomainError):
    code = "forbidden"
    http_status = 403
    title = "Your role may not do this"


class NotAdmittedError(DomainError):
    code = "not_admitted"
    http_status = 403
    title = "Participant not admitted by the operator"


class EmailTakenError(ConflictError):
    code = "email_taken"
    title = "Email already registered"


class InvalidCredentialFormatError(ValidationError):
    code = "validation_error"
    title = "Invalid email or password"


class UserNotFoundError(NotFoundError):
    code = "user_not_found"
    title = "User not found"


class ZoneNotFoundError(NotFoundError):
    code = "zone_not_found"
    title = "Zone not found"


class ZoneExistsError(ConflictError):
    code = "zone_exists"
    title = "Zone already exists"


class CapacityGovernedError(ConflictError):
    code = "capacity_governed"
    title = "Link capacity is governed"


class MeterNotFoundError(NotFoundError):
    code = "meter_not_found"
    title = "Meter not found"


class MeterSerialTakenError(ConflictError):
    code = "meter_serial_taken"
    title = "Meter serial already registered"


class InvalidPublicKeyError(ValidationError):
    code = "invalid_public_key"
    title = "Not an Ed25519 public key"


class InsufficientBalanceError(ConflictError):
    code = "insufficient_balance"
    title = "Free balance does not cover the escrow"


class IdempotencyKeyReusedError(ConflictError):
    code = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class InvalidAmountError(ValidationError):
    code = "invalid_amount"
    title = "Amount must be a positive integer"


class EpochNotClosedError(ConflictError):
    code = "epoch_not_closed"
    title = "The epoch's gate has not closed"


class InvalidEpochError(ValidationError):
    code = "invalid_epoch"
    title = "Epoch id outside the calendar"


class StorageUnavailableError(DomainError):
    """The database cannot be reached or written just now (down, disk full). Send the
    same request again later, with the same ``Idempotency-Key``: should the commit have
    gone through before the connection was lost, that answers with what was stored."""

    code = "storage_unavailable"
    http_status = 503
    title = "Storage unavailable"
    retry_after_s = 5

    def __init__(self, detail: str, **context: object) -> None:
        super().__init__(detail, **context)
        self.headers = {"Retry-After": str(self.retry_after_s)}


class NotMarketWriterError(DomainError):
    """This replica is not the market writer and cannot do this itself (an operator's
    market action, a cancel or an amendment), or no writer answered a forwarded order
    in time. Nothing was changed: send it again (to the writer, or later, with the same
    ``Idempotency-Key``)."""

    code = "not_market_writer"
    http_status = 503
    title = "Not the market writer"
    retry_after_s = 1

    def __init__(self, detail: str, **context: object) -> None:
        super().__init__(detail, **context)
        self.headers = {"Retry-After": str(self.retry_after_s)}
