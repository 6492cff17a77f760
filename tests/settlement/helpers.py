"""Builders shared by the settlement tests."""

from __future__ import annotations

from eth_utils import keccak

from wattx.domain.trades import Trade
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Asset, MeterMint, ParticipantRole, Signer
from wattx.units import fee_of, trade_value, wh_to_energy_base_units

ZONE = keccak(text="zone-a")


def make_trade(
    trade_id: str,
    buyer: str,
    seller: str,
    qty_wh: int,
    price: int,
    *,
    epoch_id: int = 7,
    loss_wh: int = 0,
    fee_bps: int = 25,
    wheeling_fee: int = 0,
    seq: int = 0,
) -> Trade:
    value = trade_value(qty_wh, price)
    return Trade(
        id=trade_id,
        epoch_id=epoch_id,
        zone="a",
        buy_order_id=f"b-{trade_id}",
        sell_order_id=f"s-{trade_id}",
        buyer=buyer,
        seller=seller,
        buyer_zone="a",
        seller_zone="a",
        qty_wh=qty_wh,
        delivered_wh=qty_wh - loss_wh,
        price=price,
        value=value,
        buyer_fee=fee_of(value, fee_bps),
        seller_fee=fee_of(value, fee_bps),
        wheeling_fee=wheeling_fee,
        seq=seq,
    )


def admitted_user(chain: ContractChain, role: ParticipantRole = ParticipantRole.PROSUMER) -> Signer:
    user = new_signer()
    chain.admit_participant(user.address, role)
    return user


def funded_trader(
    chain: ContractChain, *, energy_wh: int = 0, credit: int = 0, meter_seed: str = ""
) -> Signer:
    """An admitted user with ``energy_wh`` and ``credit`` deposited in the Marketplace."""
    user = admitted_user(chain)
    if energy_wh:
        if not chain.view("Registry", "zones", ZONE):
            chain.add_zone(ZONE)
        meter = keccak(text=f"meter-{user.address}-{meter_seed}")
        chain.register_meter(meter, user.address, ZONE, energy_wh)
        chain.mint_readings([MeterMint(meter, 1, user.address, energy_wh)])
        chain.deposit(user, Asset.ENERGY, wh_to_energy_base_units(energy_wh))
    if credit:
        chain.mint_credit(user.address, credit)
        chain.deposit(user, Asset.CREDIT, credit)
    return user
