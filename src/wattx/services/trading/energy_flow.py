"""The household's energy flow for the epoch being delivered: the use case behind
the overview's live flow, from verified readings, trades and device telemetry."""

from __future__ import annotations

from datetime import datetime

from wattx.devices.model import DeviceKind
from wattx.domain.energy_flow import BatteryState, EnergyFlow, energy_flow
from wattx.services.measurement.delivery import DeliveryService
from wattx.services.measurement.metering import MeteringService
from wattx.services.measurement.meters import MeterRegistryService
from wattx.services.principal import Principal
from wattx.services.trading.market import MarketService

_MAX_METERS = 100
_MAX_TRADES = 1_000
_MAX_DEVICES = 100


class EnergyFlowService:
    def __init__(
        self,
        *,
        meters: MeterRegistryService,
        metering: MeteringService,
        market: MarketService,
        delivery: DeliveryService,
    ) -> None:
        self._meters = meters
        self._metering = metering
        self._market = market
        self._delivery = delivery

    def current_epoch(self, now: datetime) -> int:
        return self._market.schedule.epoch_id_at(now)

    async def flow(self, principal: Principal, epoch_id: int) -> EnergyFlow:
        """The principal's own flow over ``epoch_id``: their meters, their trades for
        that epoch (as buyer and as seller), their batteries' last state of charge."""
        production = consumption = 0
        for meter in await self._meters.list_meters(principal, limit=_MAX_METERS, offset=0):
            if meter.owner_id != principal.user_id:
                continue
            for row in await self._metering.epoch_energy(
                principal, meter.id, from_epoch=epoch_id, to_epoch=epoch_id, limit=1, offset=0
            ):
                production += row.verified_export_wh
                consumption += row.import_wh
        bought = sold = 0
        for trade in await self._market.list_trades(
            principal, zone=None, epoch_id=epoch_id, limit=_MAX_TRADES, offset=0
        ):
            # The buyer gets what reaches it after the zone-to-zone loss; the
            # seller owes what it sold (as the key figures count them).
            if trade.buyer == principal.user_id:
                bought += trade.delivered_wh
            if trade.seller == principal.user_id:
                sold += trade.qty_wh
        batteries = [
            BatteryState(soc_wh=d.soc_wh, capacity_wh=d.capacity_wh)
            for d in await self._delivery.list_devices(principal, limit=_MAX_DEVICES, offset=0)
            if d.kind == DeviceKind.BATTERY.value and d.owner_id == principal.user_id
        ]
        return energy_flow(
            epoch_id,
            production_wh=production,
            consumption_wh=consumption,
            bought_wh=bought,
            sold_wh=sold,
            batteries=batteries,
        )
