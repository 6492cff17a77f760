"""Who is calling: the identity every service call is made on behalf of."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PROSUMER = "prosumer"
    CONSUMER = "consumer"
    OPERATOR = "operator"
    NODE_OPERATOR = "node_operator"
    AUDITOR = "auditor"

    @property
    def sees_everything(self) -> bool:
        """Operators and auditors read every order, trade and event."""
        return self in (Role.OPERATOR, Role.AUDITOR)


SELF_SERVICE_ROLES = frozenset({Role.PROSUMER, Role.CONSUMER, Role.NODE_OPERATOR})
"""Roles a person may pick at sign-up; operators grant the others."""


class UserStatus(StrEnum):
    PENDING = "pending"
    ADMITTED = "admitted"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: Role
    status: UserStatus
    session_id: str

    @property
    def is_admitted(self) -> bool:
        return self.status is UserStatus.ADMITTED
