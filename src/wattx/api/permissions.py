"""The permission matrix: which roles may call which route. The one place it is decided.

Every route of the app must have a rule here; the app refuses to start
otherwise (:func:`check_complete`) and a test walks every route with every role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wattx.services.principal import Role


@dataclass(frozen=True, slots=True)
class Rule:
    """``public``: no token needed. Otherwise a valid token whose role is in ``roles``."""

    public: bool
    roles: frozenset[Role]

    def allows(self, role: Role) -> bool:
        return self.public or role in self.roles


PUBLIC = Rule(public=True, roles=frozenset(Role))
ANY_ROLE = Rule(public=False, roles=frozenset(Role))


def roles(*allowed: Role) -> Rule:
    return Rule(public=False, roles=frozenset(allowed))


_P, _C, _O, _N, _A = Role.PROSUMER, Role.CONSUMER, Role.OPERATOR, Role.NODE_OPERATOR, Role.AUDITOR
TRADERS = roles(_P, _C)
TRADERS_AND_OVERSIGHT = roles(_P, _C, _O, _A)
OPERATOR = roles(_O)
OVERSIGHT = roles(_O, _A)

V1 = "/api/v1"

MATRIX: dict[tuple[str, str], Rule] = {
    # operations and documentation
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    # accounts
    ("POST", f"{V1}/auth/signup"): PUBLIC,
    ("POST", f"{V1}/auth/login"): PUBLIC,
    ("POST", f"{V1}/auth/refresh"): PUBLIC,
    ("POST", f"{V1}/auth/wallet/challenge"): PUBLIC,
    ("POST", f"{V1}/auth/wallet/login"): PUBLIC,
    ("POST", f"{V1}/auth/logout"): ANY_ROLE,
    ("GET", f"{V1}/users/me"): ANY_ROLE,
    ("PATCH", f"{V1}/users/me"): ANY_ROLE,
    ("GET", f"{V1}/admin/users"): OVERSIGHT,
    ("PATCH", f"{V1}/admin/users/{{user_id}}"): OPERATOR,
    ("POST", f"{V1}/admin/users/{{user_id}}/credit-deposits"): OPERATOR,
    ("POST", f"{V1}/admin/users/{{user_id}}/energy-grants"): OPERATOR,
    # zones
    ("GET", f"{V1}/zones"): ANY_ROLE,
    ("POST", f"{V1}/zones"): OPERATOR,
    ("GET", f"{V1}/zones/rates"): ANY_ROLE,
    ("GET", f"{V1}/zones/{{zone_id}}"): ANY_ROLE,
    ("PUT", f"{V1}/zones/{{zone_id}}"): OPERATOR,
    # meters
    ("POST", f"{V1}/meters"): TRADERS,
    ("GET", f"{V1}/meters"): TRADERS_AND_OVERSIGHT,
    ("GET", f"{V1}/meters/{{meter_id}}"): TRADERS_AND_OVERSIGHT,
    ("POST", f"{V1}/meters/{{meter_id}}/activate"): OPERATOR,
    ("POST", f"{V1}/meters/{{meter_id}}/deactivate"): OPERATOR,
    # readings: a meter is not a user and holds no token; the Ed25519 signature
    # over the batch authenticates it (checked by the metering service), and the
    # per-address rate limit of public routes applies.
    ("POST", f"{V1}/meters/{{meter_id}}/readings"): PUBLIC,
    ("POST", f"{V1}/readings/batch"): PUBLIC,
    ("GET", f"{V1}/meters/{{meter_id}}/readings"): TRADERS_AND_OVERSIGHT,
    ("GET", f"{V1}/meters/{{meter_id}}/energy"): TRADERS_AND_OVERSIGHT,
    ("GET", f"{V1}/readings/quarantine"): OVERSIGHT,
    ("POST", f"{V1}/readings/quarantine/{{meter_id}}/{{seq}}/release"): OPERATOR,
    ("POST", f"{V1}/readings/quarantine/{{meter_id}}/{{seq}}/reject"): OPERATOR,
    ("GET", f"{V1}/alerts"): OVERSIGHT,
    # wallet
    ("GET", f"{V1}/wallet"): roles(_P, _C, _N),
    ("POST", f"{V1}/wallet/deposit"): OPERATOR,
    ("POST", f"{V1}/wallet/deposit-requests"): roles(_P, _C, _N),
    ("GET", f"{V1}/wallet/deposit-requests"): roles(_P, _C, _N),
    ("GET", f"{V1}/admin/deposit-requests"): OVERSIGHT,
    ("POST", f"{V1}/admin/deposit-requests/{{request_id}}/approve"): OPERATOR,
    ("POST", f"{V1}/admin/deposit-requests/{{request_id}}/reject"): OPERATOR,
    ("GET", f"{V1}/kpis"): TRADERS,
    ("GET", f"{V1}/energy-flow"): TRADERS,
    ("GET", f"{V1}/statements/{{month}}"): TRADERS,
    ("POST", f"{V1}/wallet/withdraw"): roles(_P, _C, _N),
    # self custody: the caller's own address and the transactions it signs
    ("POST", f"{V1}/wallet/withdraw/cancel"): roles(_P, _C, _N),
    ("POST", f"{V1}/wallet/address/challenge"): roles(_P, _C, _N),
    ("POST", f"{V1}/wallet/address"): roles(_P, _C, _N),
    ("POST", f"{V1}/wallet/transactions"): roles(_P, _C, _N),
    # chain: minting, settlement, proofs; the ledger is public so anyone can audit it,
    # with addresses and aggregates only (docs/api.md, "Who sees what")
    ("POST", f"{V1}/tokens/mint"): OPERATOR,
    ("GET", f"{V1}/tokens/mints"): TRADERS_AND_OVERSIGHT,
    ("POST", f"{V1}/tokens/retire"): TRADERS,
    ("POST", f"{V1}/epochs/{{epoch_id}}/settle"): OPERATOR,
    ("GET", f"{V1}/trades/{{trade_id}}/proof"): PUBLIC,
    # the leaf's fields name the parties' addresses: the parties and oversight only
    ("GET", f"{V1}/trades/{{trade_id}}/leaf"): TRADERS_AND_OVERSIGHT,
    ("GET", f"{V1}/ledger/overview"): PUBLIC,
    ("GET", f"{V1}/ledger/transactions"): PUBLIC,
    ("GET", f"{V1}/ledger/mints"): PUBLIC,
    ("GET", f"{V1}/ledger/retirements"): PUBLIC,
    ("GET", f"{V1}/ledger/epochs"): PUBLIC,
    ("GET", f"{V1}/ledger/price-history"): PUBLIC,
    ("GET", f"{V1}/ledger/contracts"): PUBLIC,
    # who holds which address: the mapping the public ledger never shows
    ("GET", f"{V1}/ledger/accounts"): OVERSIGHT,
    # market
    ("GET", f"{V1}/markets"): ANY_ROLE,
    ("GET", f"{V1}/markets/{{zone_id}}/book"): ANY_ROLE,
    ("GET", f"{V1}/markets/{{zone_id}}/reference-price"): ANY_ROLE,
    ("POST", f"{V1}/markets/{{zone_id}}/pause"): OPERATOR,
    ("POST", f"{V1}/markets/{{zone_id}}/resume"): OPERATOR,
    ("POST", f"{V1}/orders"): TRADERS,
    ("POST", f"{V1}/orders/batch"): TRADERS,
    ("GET", f"{V1}/orders"): TRADERS_AND_OVERSIGHT,
    ("GET", f"{V1}/orders/{{order_id}}"): TRADERS_AND_OVERSIGHT,
    ("DELETE", f"{V1}/orders/{{order_id}}"): TRADERS,
    ("PATCH", f"{V1}/orders/{{order_id}}"): TRADERS,
    ("GET", f"{V1}/trades"): TRADERS_AND_OVERSIGHT,
    ("GET", f"{V1}/trades/{{trade_id}}"): TRADERS_AND_OVERSIGHT,
    ("GET", f"{V1}/epochs"): OVERSIGHT,
    ("POST", f"{V1}/epochs/{{epoch_id}}/close"): OPERATOR,
    ("GET", f"{V1}/epochs/{{epoch_id}}/congestion"): OVERSIGHT,
    # streams
    ("GET", f"{V1}/events"): ANY_ROLE,
    # dashboard pages (wattx.web): public pages carry no personal field
    ("GET", "/"): PUBLIC,
    ("GET", "/market/{zone_id}"): PUBLIC,
    ("GET", "/market/{zone_id}/live"): PUBLIC,
    ("GET", "/ledger"): PUBLIC,
    ("GET", "/proof"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/signup"): PUBLIC,
    ("POST", "/signup"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/live/events"): PUBLIC,
    ("GET", "/live/markets"): PUBLIC,
    ("GET", "/me"): TRADERS,
    ("GET", "/me/flow/live"): TRADERS,
    ("GET", "/me/ticket"): TRADERS,
    ("POST", "/me/orders"): TRADERS,
    ("GET", "/me/orders"): TRADERS,
    ("GET", "/me/orders/live"): TRADERS,
    ("POST", "/me/orders/{order_id}/cancel"): TRADERS,
    ("POST", "/me/orders/{order_id}/amend"): TRADERS,
    ("GET", "/me/meters"): TRADERS,
    ("GET", "/me/statement"): TRADERS,
    ("GET", "/me/wallet"): TRADERS,
    ("POST", "/me/wallet/withdraw"): TRADERS,
    ("POST", "/me/wallet/deposit-requests"): TRADERS,
    ("POST", "/me/wallet/retire"): TRADERS,
    ("GET", "/me/statement.csv"): TRADERS,
    ("GET", "/operator"): OVERSIGHT,
    ("POST", "/operator/users/{user_id}/admission"): OPERATOR,
    ("POST", "/operator/users/{user_id}/deposit"): OPERATOR,
    ("POST", "/operator/deposit-requests/{request_id}/{decision}"): OPERATOR,
    ("GET", "/operator/meters"): OVERSIGHT,
    ("POST", "/operator/meters/{meter_id}/activate"): OPERATOR,
    ("POST", "/operator/meters/{meter_id}/deactivate"): OPERATOR,
    ("GET", "/operator/quarantine"): OVERSIGHT,
    ("POST", "/operator/quarantine/{meter_id}/{seq}/release"): OPERATOR,
    ("POST", "/operator/quarantine/{meter_id}/{seq}/reject"): OPERATOR,
    ("GET", "/operator/alerts"): OVERSIGHT,
    ("GET", "/operator/nodes"): OVERSIGHT,
    ("GET", "/operator/devices"): OVERSIGHT,
    ("GET", "/operator/deliveries"): OVERSIGHT,
    ("GET", "/operator/deliveries/live"): OVERSIGHT,
    ("GET", "/operator/audit"): OVERSIGHT,
    ("GET", "/operator/zones"): OVERSIGHT,
    ("POST", "/operator/zones/{zone_id}"): OPERATOR,
    ("GET", "/operator/epochs"): OVERSIGHT,
    ("GET", "/operator/epochs/live"): OVERSIGHT,
    ("GET", "/operator/epochs/trades/live"): OVERSIGHT,
    ("POST", "/operator/epochs/{epoch_id}/close"): OPERATOR,
    ("POST", "/operator/epochs/{epoch_id}/settle"): OPERATOR,
    # governance pages: everyone signed in reads; participants and the operator propose;
    # participants vote; the operator executes
    ("GET", "/governance"): ANY_ROLE,
    ("GET", "/governance/live"): ANY_ROLE,
    ("POST", "/governance/proposals"): roles(_P, _C, _N, _O),
    ("POST", "/governance/proposals/{proposal_id}/votes"): roles(_P, _C, _N),
    ("POST", "/governance/proposals/{proposal_id}/execute"): OPERATOR,
    # devices: participants register and command their own; operators see all and
    # who is at risk, and may command any device; auditors read
    ("POST", f"{V1}/devices"): TRADERS,
    ("GET", f"{V1}/devices"): TRADERS_AND_OVERSIGHT,
    ("GET", f"{V1}/devices/at-risk"): OVERSIGHT,
    ("GET", f"{V1}/devices/{{device_id}}"): TRADERS_AND_OVERSIGHT,
    ("PATCH", f"{V1}/devices/{{device_id}}"): TRADERS,
    ("DELETE", f"{V1}/devices/{{device_id}}"): TRADERS,
    ("POST", f"{V1}/devices/{{device_id}}/commands"): roles(_P, _C, _O),
    ("GET", f"{V1}/devices/{{device_id}}/commands"): TRADERS_AND_OVERSIGHT,
    ("POST", f"{V1}/devices/{{device_id}}/telemetry"): TRADERS,
    ("PUT", f"{V1}/devices/{{device_id}}/schedule"): TRADERS,
    ("POST", f"{V1}/deliveries/{{trade_id}}/cancel"): roles(_P, _C, _O),
    ("GET", f"{V1}/deliveries"): TRADERS_AND_OVERSIGHT,
    # edge nodes: operators enrol and see all; a node operator sees and commands its own
    # (another's node answers 404); enrolment is authenticated by the registration token
    ("POST", f"{V1}/nodes/registration-tokens"): OPERATOR,
    ("POST", f"{V1}/nodes/enrol"): PUBLIC,
    ("GET", f"{V1}/nodes"): roles(_O, _N, _A),
    ("POST", f"{V1}/nodes/jobs"): roles(_O, _N),
    ("GET", f"{V1}/nodes/jobs/{{job_id}}"): roles(_O, _N, _A),
    ("GET", f"{V1}/nodes/{{node_id}}"): roles(_O, _N, _A),
    ("GET", f"{V1}/nodes/{{node_id}}/stats"): roles(_O, _N, _A),
    ("DELETE", f"{V1}/nodes/{{node_id}}"): roles(_O, _N),
    ("POST", f"{V1}/nodes/{{node_id}}/key-rotation"): roles(_O, _N),
    ("PUT", f"{V1}/nodes/{{node_id}}/config"): roles(_O, _N),
    ("GET", f"{V1}/nodes/{{node_id}}/config"): roles(_O, _N, _A),
    ("PUT", f"{V1}/nodes/{{node_id}}/meters/{{meter_id}}"): OPERATOR,
    ("DELETE", f"{V1}/nodes/{{node_id}}/meters/{{meter_id}}"): OPERATOR,
    ("POST", f"{V1}/nodes/{{node_id}}/commands"): roles(_O, _N),
    ("GET", f"{V1}/nodes/{{node_id}}/commands"): roles(_O, _N, _A),
    ("GET", f"{V1}/nodes/{{node_id}}/commands/{{command_id}}"): roles(_O, _N, _A),
    # node incentives: everyone reads the pool; a node's owner bonds, claims and appeals;
    # operators fund the pool, report periods and reverse appealed slashes
    ("GET", f"{V1}/incentives"): ANY_ROLE,
    ("POST", f"{V1}/incentives/pool"): OPERATOR,
    ("POST", f"{V1}/incentives/periods/{{period}}/report"): OPERATOR,
    ("POST", f"{V1}/incentives/slashes/{{slash_id}}/reverse"): OPERATOR,
    ("GET", f"{V1}/nodes/{{node_id}}/rewards"): roles(_O, _N, _A),
    ("POST", f"{V1}/nodes/{{node_id}}/bond"): roles(_N),
    ("POST", f"{V1}/nodes/{{node_id}}/unbond"): roles(_N),
    ("POST", f"{V1}/nodes/{{node_id}}/bond/withdraw"): roles(_N),
    ("POST", f"{V1}/nodes/{{node_id}}/rewards/claim"): roles(_N),
    ("POST", f"{V1}/nodes/{{node_id}}/slashes/{{slash_id}}/appeal"): roles(_N),
    # governance: everyone reads; participants propose and vote (weight: verified
    # generation), the operator proposes too; anyone may have a passed proposal executed
    ("GET", f"{V1}/governance/parameters"): ANY_ROLE,
    ("GET", f"{V1}/governance/proposals"): ANY_ROLE,
    ("GET", f"{V1}/governance/proposals/{{proposal_id}}"): ANY_ROLE,
    ("POST", f"{V1}/governance/proposals"): roles(_P, _C, _N, _O),
    ("POST", f"{V1}/governance/proposals/{{proposal_id}}/votes"): roles(_P, _C, _N),
    ("POST", f"{V1}/governance/proposals/{{proposal_id}}/execute"): roles(_P, _C, _N, _O),
    # the audit log
    ("GET", f"{V1}/audit"): OVERSIGHT,
    ("GET", f"{V1}/audit/verify"): OVERSIGHT,
}


def rule_for(method: str, path_template: str) -> Rule | None:
    if method == "HEAD":
        method = "GET"
    return MATRIX.get((method, path_template))


def check_complete(routes: Iterable[tuple[str, str]]) -> None:
    """Raise if any (method, path template) of the app has no rule."""
    missing = sorted(f"{m} {p}" for m, p in routes if rule_for(m, p) is None)
    if missing:
        raise RuntimeError(f"routes without a permission rule: {', '.join(missing)}")
