"""Node-incentive errors, one stable code each (the contract's own refusals map to
``period_already_reported`` and ``incentive_rule_violated``, see wattx.settlement.errors)."""

from __future__ import annotations

from wattx.domain.errors import ConflictError, NotFoundError, PermissionDeniedError

MAX_REPORTS = 2_000
"""Nodes one ``report_period`` transaction takes (the contract's ``MAX_REPORTS``)."""


class NodeNotOwnedError(PermissionDeniedError):
    code = "node_not_owned"
    title = "The node belongs to another node operator"


class IncentivePeriodOpenError(ConflictError):
    code = "incentive_period_open"
    title = "The incentive period has not ended yet"


class SlashNotFoundError(NotFoundError):
    code = "slash_not_found"
    title = "No such slash of this node"


class IncentiveReportTooLargeError(ConflictError):
    code = "incentive_report_too_large"
    title = "More bonded nodes were active in the period than one report takes"
