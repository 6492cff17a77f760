"""Mint amounts: how much verified surplus of a meter becomes energy tokens.

Per meter, a watermark records the last epoch minted for and the surplus
carried over. A mint run for the epochs since then counts, per epoch, the
positive part of the verified net export (export minus import): an epoch in
which the meter drew more than it fed in adds nothing, and does not claw back
surplus from other epochs, because the market trades each epoch on its own.

- Threshold: a run mints only if it can mint at least ``threshold_wh``; below
  that the watermark stays where it is and the surplus waits for a later run.
  Small meters are not starved by this: the cap below grows with the time
  since the last mint.
- Cap: a run mints at most ``rated capacity × time since the last mint``,
  the most the connection can physically have exported. The cap is a rate
  limit, not a confiscation: what it holds back is carried, never dropped.
  Energy that must not be minted at all is stopped earlier, by quarantine.

The function is idempotent: running it again for an epoch already minted
for mints nothing, so a mint run interrupted after the transaction can be
repeated safely.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from wattx.domain.epochs import EpochSchedule
from wattx.domain.errors import ValidationError
from wattx.metering.intervals import EpochEnergy

SECONDS_PER_HOUR = 3_600


@dataclass(frozen=True, slots=True)
class MintPolicy:
    """``threshold_wh``: the smallest amount worth a mint (at least 1 Wh)."""

    threshold_wh: int = 100

    def __post_init__(self) -> None:
        if self.threshold_wh < 1:
            raise ValidationError("the mint threshold must be at least 1 Wh")


@dataclass(frozen=True, slots=True)
class MintWatermark:
    """Where a meter's minting stands.

    Surplus of epochs up to and including ``last_mint_epoch`` has been minted
    or is in ``carried_wh``; later epochs have not been counted yet. A new
    meter starts at the epoch before its first reading, with nothing carried.
    """

    last_mint_epoch: int
    carried_wh: int = 0

    def __post_init__(self) -> None:
        if self.carried_wh < 0:
            raise ValidationError("carried surplus is never negative")


@dataclass(frozen=True, slots=True)
class MintDecision:
    """The outcome of a mint run for one meter.

    ``mint_wh`` is what to mint now (0 for none); ``watermark`` is the state to
    store once the mint is recorded. ``available_wh`` is the carried plus newly
    counted surplus and ``cap_wh`` the cap for the period since the last mint.
    """

    mint_wh: int
    watermark: MintWatermark
    available_wh: int
    cap_wh: int


def compute_mint(
    watermark: MintWatermark,
    energies: Iterable[EpochEnergy],
    *,
    through_epoch: int,
    rated_capacity_w: int,
    schedule: EpochSchedule,
    policy: MintPolicy,
) -> MintDecision:
    """What to mint for the epochs after ``watermark.last_mint_epoch`` up to ``through_epoch``.

    With nothing carried and no surplus in the period, nothing is minted and the
    watermark moves past the epochs whose energy is final: up to the one before the newest
    epoch with energy in the period (a later reading may still add to that one and to
    those after it, as a meter back from an outage delivers what it buffered). The caller
    stores it without a mint.

    ``energies`` are the meter's verified per-epoch energies; entries outside
    that range are ignored, and an epoch may appear only once. The caller
    passes as ``through_epoch`` the last epoch that has ended *and* that the
    meter's readings cover completely (:func:`last_covered_epoch`), so
    readings arriving late are never missed.
    """
    first_epoch = watermark.last_mint_epoch + 1
    if through_epoch < first_epoch:
        return MintDecision(0, watermark, watermark.carried_wh, 0)
    energies = list(energies)  # read twice below
    surplus_wh = _surplus_in(energies, first_epoch, through_epoch)
    available_wh = watermark.carried_wh + surplus_wh
    period_s = (through_epoch - watermark.last_mint_epoch) * schedule.length_s
    cap_wh = rated_capacity_w * period_s // SECONDS_PER_HOUR
    mint_wh = min(available_wh, cap_wh)
    if available_wh == 0:
        # Nothing carried and no surplus: nothing waits, so the watermark moves past the
        # final epochs. A meter that never exports (a consumer's) is not read again from
        # its first epoch at every run, and a later mint's cap spans the time since, not
        # the idle months before.
        final = _newest_in(energies, first_epoch, through_epoch) - 1
        if final > watermark.last_mint_epoch:
            return MintDecision(0, MintWatermark(final, 0), 0, cap_wh)
        return MintDecision(0, watermark, 0, cap_wh)
    if mint_wh < policy.threshold_wh:
        return MintDecision(0, watermark, available_wh, cap_wh)
    return MintDecision(
        mint_wh=mint_wh,
        watermark=MintWatermark(through_epoch, available_wh - mint_wh),
        available_wh=available_wh,
        cap_wh=cap_wh,
    )


def last_covered_epoch(last_reading_ts: datetime, schedule: EpochSchedule) -> int:
    """The last epoch that ends no later than the meter's newest reading.

    Its energy is final: any later reading adds energy only after that instant.
    """
    return schedule.epoch_id_at(last_reading_ts) - 1


def _newest_in(energies: Iterable[EpochEnergy], first_epoch: int, last_epoch: int) -> int:
    """The newest epoch with energy from ``first_epoch`` to ``last_epoch``; ``first_epoch``
    when there is none (so nothing before it is final yet)."""
    return max(
        (e.epoch_id for e in energies if first_epoch <= e.epoch_id <= last_epoch),
        default=first_epoch,
    )


def _surplus_in(energies: Iterable[EpochEnergy], first_epoch: int, last_epoch: int) -> int:
    seen: set[int] = set()
    surplus_wh = 0
    for energy in energies:
        if not first_epoch <= energy.epoch_id <= last_epoch:
            continue
        if energy.epoch_id in seen:
            raise ValidationError(
                f"epoch {energy.epoch_id} appears twice in the energies", epoch_id=energy.epoch_id
            )
        seen.add(energy.epoch_id)
        surplus_wh += max(0, energy.net_export_wh)
    return surplus_wh
