"""Settlement errors: one :class:`DomainError` subclass per rule, each with a stable code.

A contract rejects a call with ``assert ..., "reason"``; the adapters turn the
reason into the matching subclass of :class:`ContractRevertError` (see
:func:`revert_error`), so callers can react to the rule, not to the wording.
"""

from __future__ import annotations

from wattx.domain.errors import ConflictError, DomainError, NotFoundError, ValidationError


class ChainError(DomainError):
    """The chain did not do what was asked."""

    code = "chain_error"
    http_status = 502
    title = "The settlement chain failed"


class ChainUnavailableError(ChainError):
    code = "chain_unavailable"
    http_status = 503
    title = "The settlement chain cannot be reached"


class TransactionTimeoutError(ChainError):
    code = "chain_transaction_timeout"
    http_status = 504
    title = "The transaction was not mined in time"


class ContractRevertError(ChainError):
    """A contract rejected the call; ``reason`` is the contract's own message."""

    code = "contract_reverted"
    http_status = 409
    title = "A contract rejected the call"

    def __init__(self, reason: str, **context: object) -> None:
        super().__init__(f"contract reverted: {reason or 'no reason given'}", **context)
        self.reason = reason


class EpochAlreadySettledError(ContractRevertError):
    code = "epoch_already_settled"
    title = "The epoch was settled before"


class InsufficientBalanceError(ContractRevertError):
    code = "insufficient_balance"
    title = "Not enough free or locked balance"


class ConservationViolatedError(ContractRevertError):
    code = "conservation_violated"
    http_status = 422
    title = "The batch does not conserve energy or credit"


class ChainPermissionError(ContractRevertError):
    code = "chain_permission_denied"
    http_status = 403
    title = "The caller lacks the role the contract requires"


class MeterReadingRejectedError(ContractRevertError):
    code = "meter_reading_rejected"
    http_status = 422
    title = "The oracle rejected a reading"


class MintBatchAlreadyMintedError(ContractRevertError):
    code = "mint_batch_already_minted"
    title = "The oracle minted this batch before"


class GovernanceRuleError(ContractRevertError):
    code = "governance_rule_violated"
    title = "The proposal or vote breaks a governance rule"


class PeriodAlreadyReportedError(ContractRevertError):
    code = "period_already_reported"
    title = "The incentive period was reported before"


class IncentiveRuleError(ContractRevertError):
    code = "incentive_rule_violated"
    title = "The bond, report, claim or slash breaks a NetworkIncentives rule"


# Reason prefixes (as the contracts write them) mapped to the rule they break.
_REVERT_RULES: tuple[tuple[str, type[ContractRevertError]], ...] = (
    ("epoch already settled", EpochAlreadySettledError),
    ("energy not conserved", ConservationViolatedError),
    ("credit not conserved", ConservationViolatedError),
    ("energy balance would go negative", InsufficientBalanceError),
    ("credit balance would go negative", InsufficientBalanceError),
    ("withdrawal exceeds", InsufficientBalanceError),
    ("lock exceeds", InsufficientBalanceError),
    ("unlock exceeds", InsufficientBalanceError),
    ("balance exceeded", InsufficientBalanceError),
    ("allowance exceeded", InsufficientBalanceError),
    ("caller is not", ChainPermissionError),
    ("caller does not own", ChainPermissionError),
    ("not an active participant", ChainPermissionError),
    ("meter is not active", MeterReadingRejectedError),
    ("owner does not own the meter", MeterReadingRejectedError),
    ("period not increasing", MeterReadingRejectedError),
    ("reading above", MeterReadingRejectedError),
    ("batch already minted", MintBatchAlreadyMintedError),
    ("batch id is empty", MeterReadingRejectedError),
    ("already voted", GovernanceRuleError),
    ("voting has ended", GovernanceRuleError),
    ("voting still open", GovernanceRuleError),
    ("quorum not reached", GovernanceRuleError),
    ("proposal rejected", GovernanceRuleError),
    ("timelock not elapsed", GovernanceRuleError),
    ("proposal already executed", GovernanceRuleError),
    ("no voting weight", GovernanceRuleError),
    ("unknown parameter", GovernanceRuleError),
    ("unknown proposal", GovernanceRuleError),
    ("value above the parameter's maximum", GovernanceRuleError),
    ("period already reported", PeriodAlreadyReportedError),
    ("nothing to bond", IncentiveRuleError),
    ("nothing to unbond", IncentiveRuleError),
    ("nothing unbonding", IncentiveRuleError),
    ("nothing to claim", IncentiveRuleError),
    ("nothing to slash", IncentiveRuleError),
    ("amount above the bond", IncentiveRuleError),
    ("unbonding delay not elapsed", IncentiveRuleError),
    ("reports not sorted", IncentiveRuleError),
    ("unknown node", IncentiveRuleError),
    ("uptime above", IncentiveRuleError),
    ("unknown slash", IncentiveRuleError),
    ("slash not", IncentiveRuleError),
    ("slash already settled", IncentiveRuleError),
    ("appeal window", IncentiveRuleError),
    ("node already registered", IncentiveRuleError),
)


def revert_error(reason: str, **context: object) -> ContractRevertError:
    """The error for a contract's revert ``reason``: the rule's subclass, or the base class."""
    for prefix, error_type in _REVERT_RULES:
        if reason.startswith(prefix):
            return error_type(reason, **context)
    return ContractRevertError(reason, **context)


class SettlementBatchError(ValidationError):
    code = "invalid_settlement_batch"
    title = "The trades cannot form a settlement batch"


class UnknownSettlementAccountError(ValidationError):
    code = "unknown_settlement_account"
    title = "A trade names an account with no chain address"


class FeeAccountMismatchError(ConflictError):
    code = "fee_account_mismatch"
    title = "The batch's fee account is not the Marketplace's fee account"


class TradeNotInBatchError(NotFoundError):
    code = "trade_not_in_batch"
    title = "The trade is not in this epoch's batch"


class SelfCustodyAccountError(ConflictError):
    code = "self_custody_account"
    title = "The participant holds this account's key; the service cannot sign for it"


class KeyringError(DomainError):
    code = "keyring_error"
    http_status = 500
    title = "A key could not be loaded"


class OperatorKeyMissingError(KeyringError):
    code = "operator_key_missing"
    title = "No operator key is configured"


class CustodialKeyUnreadableError(KeyringError):
    code = "custodial_key_unreadable"
    title = "A custodial key cannot be decrypted with the configured secret"


class DeploymentFileError(ValidationError):
    code = "deployment_file_invalid"
    title = "The deployment file is missing or malformed"


__all__ = [
    "ChainError",
    "ChainPermissionError",
    "ChainUnavailableError",
    "ConservationViolatedError",
    "ContractRevertError",
    "CustodialKeyUnreadableError",
    "DeploymentFileError",
    "EpochAlreadySettledError",
    "FeeAccountMismatchError",
    "GovernanceRuleError",
    "InsufficientBalanceError",
    "KeyringError",
    "MeterReadingRejectedError",
    "OperatorKeyMissingError",
    "SettlementBatchError",
    "TradeNotInBatchError",
    "TransactionTimeoutError",
    "UnknownSettlementAccountError",
    "revert_error",
]
