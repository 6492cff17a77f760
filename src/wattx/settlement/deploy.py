"""Deploy and wire all wattx contracts on any transport.

Order: Registry, EnergyToken, CreditToken(registry), MeterOracle(registry,
energy), ``EnergyToken.set_minter(oracle)``, Marketplace(registry, energy,
credit, fee account), Governance(registry, oracle, …), NetworkIncentives(
registry, governance, credit); then the operator becomes an oracle submitter
and the governed parameters are defined with their defaults, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from wattx.settlement.abi import codec_of
from wattx.settlement.artifacts import load_artifact
from wattx.settlement.deployment import Deployment
from wattx.settlement.port import Signer
from wattx.settlement.transport import Transport


@dataclass(frozen=True, slots=True)
class GovernedParameter:
    """A parameter Governance owns: its name, starting value and the most a proposal may set."""

    name: str
    initial: int
    maximum: int

    @property
    def key(self) -> bytes:
        return parameter_key(self.name)


def parameter_key(name: str) -> bytes:
    """How contracts address a governed parameter: keccak256 of its name."""
    return keccak(text=name)


# Units: fees in basis points, wheeling in micro-units per kWh, losses in parts
# per million, weights in basis points, incentives in credit micro-units. The
# values are the design's defaults (same zone 0.5 ¢/kWh and 1 %, adjacent 1.0 ¢
# and 3 %, farther 1.5 ¢ + 0.1 ¢/km and 3 % + 1 %/km capped at 15 %).
DEFAULT_PARAMETERS: tuple[GovernedParameter, ...] = (
    GovernedParameter("market_fee_bps", 25, 1_000),
    GovernedParameter("wheeling_same_zone_per_kwh", 5_000, 1_000_000),
    GovernedParameter("wheeling_adjacent_per_kwh", 10_000, 1_000_000),
    GovernedParameter("wheeling_far_base_per_kwh", 15_000, 1_000_000),
    GovernedParameter("wheeling_far_per_km_per_kwh", 1_000, 1_000_000),
    GovernedParameter("loss_same_zone_ppm", 10_000, 1_000_000),
    GovernedParameter("loss_adjacent_ppm", 30_000, 1_000_000),
    GovernedParameter("loss_far_base_ppm", 30_000, 1_000_000),
    GovernedParameter("loss_far_per_km_ppm", 10_000, 1_000_000),
    GovernedParameter("loss_cap_ppm", 150_000, 1_000_000),
    GovernedParameter("refprice_supply_demand_weight_bps", 10_000, 10_000),
    GovernedParameter("refprice_storage_weight_bps", 10_000, 10_000),
    GovernedParameter("refprice_distance_weight_bps", 10_000, 10_000),
    GovernedParameter("refprice_time_of_use_weight_bps", 10_000, 10_000),
    GovernedParameter("refprice_reliability_weight_bps", 10_000, 10_000),
    GovernedParameter("refprice_base_per_kwh", 0, 10_000_000),
    GovernedParameter("price_floor_margin_bps", 0, 5_000),
    GovernedParameter("price_ceiling_margin_bps", 0, 5_000),
    GovernedParameter("mint_threshold_wh", 100, 1_000_000),
    GovernedParameter("incentive_budget_per_period", 10_000_000, 1_000_000_000_000),
    GovernedParameter("incentive_cap_per_node", 1_000_000, 1_000_000_000_000),
    GovernedParameter("incentive_min_bond", 10_000_000, 1_000_000_000_000),
    GovernedParameter("incentive_uptime_weight", 100, 1_000_000),
    GovernedParameter("incentive_reading_weight", 10, 1_000_000),
    GovernedParameter("incentive_command_weight", 100, 1_000_000),
    GovernedParameter("incentive_slash_bps", 1_000, 10_000),
    GovernedParameter("incentive_unbonding_delay_s", 7 * 24 * 3600, 90 * 24 * 3600),
    GovernedParameter("incentive_appeal_window_s", 3 * 24 * 3600, 30 * 24 * 3600),
)


DEFINITIONS_PER_TRANSACTION = 64
"""Governance's ``MAX_DEFINITIONS``: the most parameters ``define_parameters`` takes at once."""


@dataclass(frozen=True, slots=True)
class DeploySettings:
    """Governance timing and quorum (quorum in Wh of verified generation)."""

    voting_period_seconds: int = 3 * 24 * 3600
    timelock_seconds: int = 24 * 3600
    quorum_wh: int = 1_000_000
    parameters: Sequence[GovernedParameter] = field(default=DEFAULT_PARAMETERS)
    mint_threshold_wh: int | None = None
    """The service's ``mint_threshold_wh`` setting: the initial value of the governed
    ``mint_threshold_wh`` (its maximum is raised to it if lower); None keeps the default."""

    def defined(self) -> list[GovernedParameter]:
        """The parameters to define, with the deployment's own initial values."""
        found = []
        for p in self.parameters:
            if p.name == "mint_threshold_wh" and self.mint_threshold_wh is not None:
                initial = self.mint_threshold_wh
                p = GovernedParameter(p.name, initial, max(p.maximum, initial))
            found.append(p)
        return found


def _deploy(transport: Transport, operator: Signer, name: str, *args: Any) -> str:
    code = load_artifact(name).bytecode + codec_of(name).encode_constructor(args)
    outcome = transport.deploy(code, operator)
    if outcome.contract_address is None:
        raise RuntimeError(f"deploying {name} returned no contract address")
    return to_checksum_address(outcome.contract_address)


def _send(transport: Transport, operator: Signer, name: str, to: str, fn: str, *args: Any) -> None:
    transport.send(to, codec_of(name).encode_call(fn, args), operator)


def deploy_contracts(
    transport: Transport,
    operator: Signer,
    fee_account: str,
    settings: DeploySettings | None = None,
) -> Deployment:
    """Deploy every contract, wire them together and return their addresses."""
    settings = settings or DeploySettings()
    start_block = transport.block_number()
    registry = _deploy(transport, operator, "Registry")
    energy = _deploy(transport, operator, "EnergyToken")
    credit = _deploy(transport, operator, "CreditToken", registry)
    oracle = _deploy(transport, operator, "MeterOracle", registry, energy)
    _send(transport, operator, "EnergyToken", energy, "set_minter", oracle)
    marketplace = _deploy(transport, operator, "Marketplace", registry, energy, credit, fee_account)
    governance = _deploy(
        transport,
        operator,
        "Governance",
        registry,
        oracle,
        settings.voting_period_seconds,
        settings.timelock_seconds,
        settings.quorum_wh,
    )
    incentives = _deploy(transport, operator, "NetworkIncentives", registry, governance, credit)
    _send(transport, operator, "MeterOracle", oracle, "set_submitter", operator.address, True)
    # In as few transactions as Governance takes (28 parameters by default: one), not one each.
    definitions = [(p.name, p.initial, p.maximum) for p in settings.defined()]
    for start in range(0, len(definitions), DEFINITIONS_PER_TRANSACTION):
        chunk = definitions[start : start + DEFINITIONS_PER_TRANSACTION]
        _send(transport, operator, "Governance", governance, "define_parameters", chunk)
    return Deployment(
        chain_id=transport.chain_id,
        block_number=start_block,
        operator=to_checksum_address(operator.address),
        fee_account=to_checksum_address(fee_account),
        contracts={
            "Registry": registry,
            "EnergyToken": energy,
            "CreditToken": credit,
            "MeterOracle": oracle,
            "Marketplace": marketplace,
            "Governance": governance,
            "NetworkIncentives": incentives,
        },
    )
