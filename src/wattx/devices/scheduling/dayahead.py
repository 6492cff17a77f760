"""Day-ahead schedule of one battery (household or community) as a linear program.

For each slot ``t`` of the horizon (96 quarter-hours for a day) the forecast
gives the site's PV production ``pv[t]`` and load ``load[t]`` (Wh) and the
prices of importing from and exporting to the grid (micro-units per kWh). The
battery has a capacity, a reserve the owner sets, a rated power and charge and
discharge efficiencies (parts per million). The program (solved by HiGHS through
``scipy.optimize.linprog(method="highs")``)::

    minimise   sum_t import_price[t] * imp[t] - export_price[t] * exp[t]
               + EPS * (c[t] + d[t])
    such that  imp[t] - exp[t] = load[t] - pv[t] + c[t] - d[t]
               s[t] = s[t-1] + eta_c * c[t] - d[t] / eta_d        (s[-1] = initial SoC)
               reserve <= s[t] <= capacity,  s[T-1] >= final_min + m
               0 <= c[t], d[t] <= rated_power * slot / 3600 - p
               imp[t], exp[t] >= 0

``c`` is the energy the battery takes from the site (AC side), ``d`` what it
gives back, ``s`` its stored energy at the end of the slot. The objective is in
thousandths of a micro-unit; ``EPS`` (0.01 of those per Wh, a hundredth of the
smallest price step) breaks ties against pointless cycling. An
export price above the import price of the same slot is refused (it would pay
to import and export at once, without bound).

Integer rounding. The device and the plans deal in whole Wh, and the integer
state of charge follows the conservative rule of :func:`stored_wh` and
:func:`drawn_wh` (energy stored rounds down, energy drawn rounds up). The LP's
continuous schedule is turned into integers slot by slot: the integer SoC is
steered to the LP's SoC rounded to the nearest Wh, by the charge of a charging
slot (rounded up) or the discharge of a discharging slot (rounded down), then
clamped to the rated power, the capacity and the reserve of the *true* limits.
So the integer schedule is feasible whatever the rounding did, and as the
target is the LP's absolute SoC, a Wh missed in one slot is made up in the
next. When an efficiency is below 1 the LP keeps a margin of ``p = 1`` Wh of
power per slot (so a run of full-power slots keeps pace with the LP despite
``stored_wh`` rounding down) and, when a final SoC above the reserve is asked
for, ``m = 2`` Wh above it, so the requirement still holds after rounding. At
efficiencies of exactly 1 the LP's vertex solution is already whole and the
margins are 0. Should the final SoC still fall short after rounding, the LP
is solved again with margins of 8 and 32 Wh, then without margins; should
none of them round to a schedule that keeps the final SoC (a battery of a few
Wh, where whole-Wh losses dominate), the schedule is to stay idle, which keeps
any final SoC at or below the initial one. A final SoC the LP cannot reach at
all is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wattx.units import PPM_PER_UNIT, WH_PER_KWH

SECONDS_PER_HOUR = 3_600
EPS_PER_WH = 1e-2
"""Tie-break cost on battery throughput, thousandths of a micro-unit per Wh (keeps the LP
from cycling; a hundredth of the smallest price step, 1 micro-unit per kWh)."""


class ScheduleInputError(ValueError):
    """A forecast, a price series or a battery the scheduler cannot use."""


class ScheduleSolveError(RuntimeError):
    """HiGHS did not find an optimal schedule (should not happen for valid input)."""


_STATUS_INFEASIBLE = 2  # scipy.optimize.linprog: "Problem appears to be infeasible"


FINAL_MARGINS_WH = (2, 8, 32)
"""Margins above a final SoC requirement tried in turn (see the module doc)."""


class _InfeasibleError(Exception):
    """The LP has no feasible point."""


@dataclass(frozen=True, slots=True)
class BatterySpec:
    """The battery to schedule; integers (Wh, W, parts per million)."""

    capacity_wh: int
    reserve_wh: int
    rated_power_w: int
    charge_efficiency_ppm: int = 950_000
    discharge_efficiency_ppm: int = 950_000


@dataclass(frozen=True, slots=True)
class Forecast:
    """Per-slot forecast and prices, all the same length (the horizon)."""

    pv_wh: Sequence[int]
    load_wh: Sequence[int]
    import_price: Sequence[int]
    export_price: Sequence[int]
    slot_s: int = 900


@dataclass(frozen=True, slots=True)
class Slot:
    """One slot of the schedule, in whole Wh."""

    charge_wh: int
    discharge_wh: int
    import_wh: int
    export_wh: int
    soc_wh: int


@dataclass(frozen=True, slots=True)
class Schedule:
    slots: tuple[Slot, ...]
    cost_micro: int
    """Grid cost of the integer schedule, ``sum(imp * pi - exp * pe) // 1000``."""
    lp_objective_micro: float
    """The LP's optimal grid cost (continuous, without the tie-break term)."""


def stored_wh(charge_wh: int, efficiency_ppm: int) -> int:
    """Energy a charge of ``charge_wh`` adds to the battery: rounded down."""
    return charge_wh * efficiency_ppm // PPM_PER_UNIT


def drawn_wh(discharge_wh: int, efficiency_ppm: int) -> int:
    """Energy a discharge of ``discharge_wh`` takes out of the battery: rounded up."""
    return -(-discharge_wh * PPM_PER_UNIT // efficiency_ppm)


def slot_energy_wh(rated_power_w: int, slot_s: int) -> int:
    return rated_power_w * slot_s // SECONDS_PER_HOUR


def grid_cost_milli(slots: Sequence[Slot], forecast: Forecast) -> int:
    """Grid cost in thousandths of a micro-unit (exact)."""
    return sum(
        s.import_wh * pi - s.export_wh * pe
        for s, pi, pe in zip(slots, forecast.import_price, forecast.export_price, strict=True)
    )


def _validate(
    forecast: Forecast, battery: BatterySpec, initial_soc_wh: int, final_soc_min_wh: int | None
) -> None:
    n = len(forecast.pv_wh)
    if n == 0:
        raise ScheduleInputError("the horizon is empty")
    for name in ("load_wh", "import_price", "export_price"):
        if len(getattr(forecast, name)) != n:
            raise ScheduleInputError(f"{name} has a different length from pv_wh ({n})")
    if forecast.slot_s < 1:
        raise ScheduleInputError("slot_s must be >= 1")
    if any(v < 0 for v in forecast.pv_wh) or any(v < 0 for v in forecast.load_wh):
        raise ScheduleInputError("pv_wh and load_wh must be >= 0")
    for t, (pi, pe) in enumerate(zip(forecast.import_price, forecast.export_price, strict=True)):
        if pe > pi:
            raise ScheduleInputError(f"slot {t}: export price above import price")
    b = battery
    if not 0 <= b.reserve_wh < b.capacity_wh:
        raise ScheduleInputError("need 0 <= reserve_wh < capacity_wh")
    if b.rated_power_w < 0:
        raise ScheduleInputError("rated_power_w must be >= 0")
    for eff in (b.charge_efficiency_ppm, b.discharge_efficiency_ppm):
        if not 0 < eff <= PPM_PER_UNIT:
            raise ScheduleInputError("efficiencies must be in (0, 1000000] ppm")
    if not b.reserve_wh <= initial_soc_wh <= b.capacity_wh:
        raise ScheduleInputError("initial SoC must lie between reserve and capacity")
    if final_soc_min_wh is not None and not b.reserve_wh <= final_soc_min_wh <= b.capacity_wh:
        raise ScheduleInputError("final SoC minimum must lie between reserve and capacity")


def _solve_lp(
    forecast: Forecast,
    battery: BatterySpec,
    initial_soc_wh: int,
    final_min: int,
    soc_margin: int,
    power_margin: int,
) -> tuple[np.ndarray, float]:
    # Imported here, not with the module: the service imports this module at start, and
    # scipy.optimize costs about 0.4 s of every process's start-up, most of which never
    # plans a battery's day.
    from scipy.optimize import linprog
    from scipy.sparse import csc_array

    n = len(forecast.pv_wh)
    eta_c = battery.charge_efficiency_ppm / PPM_PER_UNIT
    eta_d = battery.discharge_efficiency_ppm / PPM_PER_UNIT
    rated = slot_energy_wh(battery.rated_power_w, forecast.slot_s)
    power_cap = float(max(0, rated - power_margin))
    lo_soc = float(battery.reserve_wh)
    hi_soc = float(battery.capacity_wh)
    inf = np.inf
    pi = np.asarray(forecast.import_price, dtype=np.float64)
    pe = np.asarray(forecast.export_price, dtype=np.float64)
    # Columns: c[0..n), d[0..n), imp[0..n), exp[0..n), s[0..n). Rows: balance[0..n), soc[0..n).
    cost = np.concatenate([np.full(n, EPS_PER_WH), np.full(n, EPS_PER_WH), pi, -pe, np.zeros(n)])
    col_lower = np.zeros(5 * n)
    col_upper = np.concatenate([np.full(2 * n, power_cap), np.full(2 * n, inf), np.full(n, hi_soc)])
    col_lower[4 * n :] = lo_soc
    col_lower[5 * n - 1] = max(lo_soc, float(final_min + soc_margin))
    t = np.arange(n)
    bal, soc = t, n + t
    # Each column's entries in row order (CSC).
    starts: list[int] = [0]
    index: list[np.ndarray] = []
    value: list[np.ndarray] = []

    def block(rows: np.ndarray, vals: np.ndarray) -> None:
        # rows/vals shaped (n, k): column t has k entries.
        index.append(rows.reshape(-1))
        value.append(vals.reshape(-1))
        starts.extend((starts[-1] + rows.shape[1] * (t + 1)).tolist())

    block(np.stack([bal, soc], 1), np.tile([-1.0, -eta_c], (n, 1)))  # c
    block(np.stack([bal, soc], 1), np.tile([1.0, 1.0 / eta_d], (n, 1)))  # d
    block(bal[:, None], np.ones((n, 1)))  # imp
    block(bal[:, None], -np.ones((n, 1)))  # exp
    # s[t]: +1 in soc[t], -1 in soc[t+1] (the last has one entry only).
    s_rows = [r for k in range(n) for r in ((soc[k], soc[k + 1]) if k + 1 < n else (soc[k],))]
    s_vals = [v for k in range(n) for v in ((1.0, -1.0) if k + 1 < n else (1.0,))]
    index.append(np.asarray(s_rows))
    value.append(np.asarray(s_vals))
    base = starts[-1]
    s_starts = [base + 2 * (k + 1) for k in range(n - 1)] + [base + 2 * n - 1]
    starts.extend(s_starts)

    rhs = np.concatenate(
        [
            np.asarray(forecast.load_wh, np.float64) - np.asarray(forecast.pv_wh, np.float64),
            np.zeros(n),
        ]
    )
    rhs[n] = float(initial_soc_wh)

    a_eq = csc_array(
        (
            np.concatenate(value),
            np.concatenate(index).astype(np.int32),
            np.asarray(starts, dtype=np.int32),
        ),
        shape=(2 * n, 5 * n),
    )
    # linprog's HiGHS methods take a sparse constraint matrix (scipy's documentation);
    # the stubs only list dense arrays.
    res = linprog(  # type: ignore[call-overload]
        cost,
        A_eq=a_eq,
        b_eq=rhs,
        bounds=list(zip(col_lower.tolist(), col_upper.tolist(), strict=True)),
        method="highs",
    )
    if res.status == _STATUS_INFEASIBLE:
        raise _InfeasibleError
    if res.status != 0:
        raise ScheduleSolveError(f"HiGHS: {res.message}")
    x: np.ndarray = np.asarray(res.x)
    grid = float(pi @ x[2 * n : 3 * n] - pe @ x[3 * n : 4 * n]) / WH_PER_KWH
    return x, grid


def _round(
    x: np.ndarray, forecast: Forecast, battery: BatterySpec, initial_soc_wh: int
) -> tuple[Slot, ...]:
    n = len(forecast.pv_wh)
    eff_c, eff_d = battery.charge_efficiency_ppm, battery.discharge_efficiency_ppm
    rated = slot_energy_wh(battery.rated_power_w, forecast.slot_s)
    cap, reserve = battery.capacity_wh, battery.reserve_wh
    slots: list[Slot] = []
    soc = initial_soc_wh
    for t in range(n):
        c_lp, d_lp, s_lp = float(x[t]), float(x[n + t]), float(x[4 * n + t])
        target = min(cap, max(reserve, round(s_lp)))
        if c_lp >= d_lp:
            # Charging (or idle): discharge as the LP says, then charge to the target.
            d = min(max(0, round(d_lp)), rated, (soc - reserve) * eff_d // PPM_PER_UNIT)
            after = soc - drawn_wh(d, eff_d)
            need = target - after
            c = -(-need * PPM_PER_UNIT // eff_c) if need > 0 and c_lp > 0 else 0
            room = cap - after
            c = max(0, min(c, rated, ((room + 1) * PPM_PER_UNIT - 1) // eff_c))
            soc = after + stored_wh(c, eff_c)
        else:
            # Discharging: charge as the LP says, then discharge down to the target.
            room = cap - soc
            c = max(0, min(round(c_lp), rated, ((room + 1) * PPM_PER_UNIT - 1) // eff_c))
            after = soc + stored_wh(c, eff_c)
            drawable = after - max(target, reserve)
            d = max(0, min(rated, drawable * eff_d // PPM_PER_UNIT))
            soc = after - drawn_wh(d, eff_d)
        net = forecast.load_wh[t] - forecast.pv_wh[t] + c - d
        slots.append(Slot(c, d, max(net, 0), max(-net, 0), soc))
    return tuple(slots)


def schedule_day_ahead(
    forecast: Forecast,
    battery: BatterySpec,
    initial_soc_wh: int,
    *,
    final_soc_min_wh: int | None = None,
) -> Schedule:
    """The cheapest integer schedule for the horizon (see the module doc)."""
    _validate(forecast, battery, initial_soc_wh, final_soc_min_wh)
    exact = battery.charge_efficiency_ppm == battery.discharge_efficiency_ppm == PPM_PER_UNIT
    final_min = battery.reserve_wh if final_soc_min_wh is None else final_soc_min_wh
    attempts = (
        [(0, 0)]
        if exact
        else [(0 if final_min == battery.reserve_wh else m, 1) for m in FINAL_MARGINS_WH]
    )
    attempts.append((0, 0))
    solved = False
    for soc_margin, power_margin in attempts:
        try:
            x, lp_grid = _solve_lp(
                forecast, battery, initial_soc_wh, final_min, soc_margin, power_margin
            )
        except _InfeasibleError:
            continue
        solved = True
        slots = _round(x, forecast, battery, initial_soc_wh)
        if slots[-1].soc_wh >= final_min:
            return Schedule(slots, grid_cost_milli(slots, forecast) // WH_PER_KWH, lp_grid)
    if not solved:
        raise ScheduleInputError("the final SoC minimum cannot be reached within the rated power")
    # Whole-Wh rounding could not keep the final SoC (a battery a few Wh large): idle.
    idle = tuple(
        Slot(0, 0, max(net, 0), max(-net, 0), initial_soc_wh)
        for net in (load - pv for load, pv in zip(forecast.load_wh, forecast.pv_wh, strict=True))
    )
    if initial_soc_wh < final_min:
        raise ScheduleInputError("the final SoC minimum cannot be reached in whole Wh")
    return Schedule(idle, grid_cost_milli(idle, forecast) // WH_PER_KWH, lp_grid)
