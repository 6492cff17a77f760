"""The control plane's rule violations, one stable ``code`` each."""

from __future__ import annotations

from wattx.domain.errors import ConflictError, DomainError, NotFoundError, ValidationError


class RegistrationTokenInvalidError(DomainError):
    code = "registration_token_invalid"
    http_status = 401
    title = "Registration token unknown"


class RegistrationTokenExpiredError(DomainError):
    code = "registration_token_expired"
    http_status = 401
    title = "Registration token expired"


class RegistrationTokenUsedError(DomainError):
    code = "registration_token_used"
    http_status = 401
    title = "Registration token already used"


class InvalidTokenLifetimeError(ValidationError):
    code = "invalid_token_lifetime"
    title = "A registration token lives between 60 s and 24 h"


class NodeAuthenticationError(DomainError):
    code = "node_authentication_failed"
    http_status = 401
    title = "Node signature or identity rejected"


class NodeRevokedError(DomainError):
    code = "node_revoked"
    http_status = 403
    title = "Node revoked"


class NodeNotFoundError(NotFoundError):
    code = "node_not_found"
    title = "Node not found"


class NodeKeyTakenError(ConflictError):
    code = "node_key_taken"
    title = "Public key already bound to a node"


class NodeOwnerInvalidError(ValidationError):
    code = "node_owner_invalid"
    title = "A node belongs to an admitted node operator"


class CommandNotFoundError(NotFoundError):
    code = "command_not_found"
    title = "Command not found"


class JobNotFoundError(NotFoundError):
    code = "job_not_found"
    title = "Job not found"


class InvalidCommandError(ValidationError):
    code = "invalid_command"
    title = "Command type or payload not allowed"


class CommandStateError(ConflictError):
    code = "command_state_conflict"
    title = "Command cannot move to that state"


class MeterNotBehindNodeError(DomainError):
    code = "meter_not_behind_node"
    http_status = 403
    title = "Meter is not attached to this node"


class MeterAttachedElsewhereError(ConflictError):
    code = "meter_attached_elsewhere"
    title = "Meter already attached to another node"


class InvalidNodeConfigError(ValidationError):
    code = "invalid_node_config"
    title = "Node configuration not allowed"
