"""Report figures (matplotlib, Agg backend: files only, no display needed).

Energy is converted to kWh and power to kW only here, for axis labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from wattx.sim.kpis import KpiReport
from wattx.sim.results import RunResults

_DPI = 110


def plot_daily_profile(results: RunResults, path: Path) -> Path:
    """Community production and consumption by time of day (UTC), averaged over the days."""
    grid = results.grid
    production = np.zeros(grid.steps)
    consumption = np.zeros(grid.steps)
    index_of = {grid.epoch_id(i): i for i in range(grid.steps)}
    for record in results.records:
        production[index_of[record.epoch_id]] += record.production_wh
        consumption[index_of[record.epoch_id]] += record.consumption_wh
    per_day = grid.steps_per_day
    days = grid.steps // per_day
    to_kw = 3600.0 / grid.step_s / 1000.0
    hours = np.arange(per_day) * grid.step_s / 3600.0
    figure, axes = plt.subplots(figsize=(9, 4))
    if days > 0:
        full = days * per_day
        axes.plot(hours, production[:full].reshape(days, per_day).mean(0) * to_kw, label="PV")
        axes.plot(hours, consumption[:full].reshape(days, per_day).mean(0) * to_kw, label="Load")
    axes.set(xlabel="hour of day (UTC)", ylabel="community power (kW)", xlim=(0, 24))
    axes.set_title("Average daily profile")
    return _save(figure, axes, path)


def plot_traded_volume(results: RunResults, path: Path) -> Path:
    """Local trades against grid imports and exports, per epoch."""
    return _write(traded_volume_figure(results), path)


def traded_volume_figure(results: RunResults) -> Figure:
    """The figure of :func:`plot_traded_volume`, on the run's time axis."""
    grid = results.grid
    local, imported, exported = np.zeros(grid.steps), np.zeros(grid.steps), np.zeros(grid.steps)
    index_of = {grid.epoch_id(i): i for i in range(grid.steps)}
    for record in results.records:
        i = index_of[record.epoch_id]
        local[i] += record.local_sold_wh
        imported[i] += record.grid_import_wh
        exported[i] += record.grid_export_wh
    hours = np.arange(grid.steps) * grid.step_s / 3600.0
    figure, axes = plt.subplots(figsize=(10, 4))
    axes.plot(hours, local / 1000.0, label="traded locally")
    axes.plot(hours, imported / 1000.0, label="grid import", alpha=0.7)
    axes.plot(hours, exported / 1000.0, label="grid export", alpha=0.7)
    axes.set(ylabel="kWh per epoch")
    _run_time_axis(axes, results)
    axes.set_title(f"Energy per epoch ({results.mechanism})")
    return _finish(figure, axes)


def plot_prices(results: RunResults, path: Path) -> Path:
    """Clearing prices per epoch against the feed-in and retail tariffs."""
    return _write(prices_figure(results), path)


def prices_figure(results: RunResults) -> Figure:
    """The figure of :func:`plot_prices`, on the run's time axis."""
    grid = results.grid
    hours = np.arange(grid.steps) * grid.step_s / 3600.0
    figure, axes = plt.subplots(figsize=(10, 4))
    axes.step(hours, [b.retail / 1e6 for b in results.bounds], where="post", label="retail")
    axes.step(hours, [b.feed_in / 1e6 for b in results.bounds], where="post", label="feed-in")
    priced = [m for m in results.market if m.clearing_price is not None]
    if priced:
        start = grid.first_epoch_id
        axes.scatter(
            [(m.epoch_id - start) * grid.step_s / 3600.0 for m in priced],
            [(m.clearing_price or 0) / 1e6 for m in priced],
            s=6,
            color="black",
            label="local clearing price",
        )
    axes.set(ylabel="price (credit per kWh)")
    _run_time_axis(axes, results)
    axes.set_title("Local prices within the tariff bounds")
    return _finish(figure, axes)


def plot_savings(report: KpiReport, path: Path) -> Path:
    """Money saved (or lost) per member against the grid-only baseline."""
    members = [m for m in report.members if m.savings is not None]
    figure, axes = plt.subplots(figsize=(max(6.0, 0.12 * len(members) + 2.0), 4))
    values = [(m.savings or 0) / 1e6 for m in members]
    colours = ["tab:green" if v >= 0 else "tab:red" for v in values]
    axes.bar(range(len(members)), values, color=colours)
    axes.axhline(0.0, color="black", linewidth=0.8)
    if len(members) <= 30:
        axes.set_xticks(range(len(members)), [m.member_id for m in members], rotation=90)
    axes.set(xlabel="member", ylabel="saved vs grid-only (credit)")
    axes.set_title(f"Savings per member ({report.mechanism})")
    return _save(figure, axes, path, legend=False)


def plot_link_flows(run: FeederFlows, path: Path) -> Path:
    """Per feeder link, the Wh crossing it each epoch (export up, import down, drawn
    below zero) against its capacities; epochs where it binds are marked."""
    results = run.results
    grid = results.grid
    hours = np.arange(grid.steps) * grid.step_s / 3600.0
    index_of = {grid.epoch_id(i): i for i in range(grid.steps)}
    children = list(dict.fromkeys(row.child for row in run.links))
    figure, all_axes = plt.subplots(
        len(children), 1, figsize=(10, 2.6 * max(len(children), 1)), squeeze=False
    )
    for axes, child in zip(all_axes[:, 0], children, strict=True):
        flows = {"up": np.zeros(grid.steps), "down": np.zeros(grid.steps)}
        caps: dict[str, int | None] = {}
        binding: list[tuple[float, float]] = []
        for row in run.links:
            if row.child != child:
                continue
            sign = 1.0 if row.direction == "up" else -1.0
            i = index_of[row.epoch_id]
            flows[row.direction][i] = sign * row.flow_wh / 1000.0
            caps[row.direction] = row.capacity_wh
            if row.shadow_price > 0:
                binding.append((hours[i], sign * row.flow_wh / 1000.0))
        axes.step(hours, flows["up"], where="post", label="export (up)")
        axes.step(hours, flows["down"], where="post", label="import (down, below 0)")
        for direction, sign in (("up", 1.0), ("down", -1.0)):
            cap = caps.get(direction)
            if cap is not None:
                axes.axhline(
                    sign * cap / 1000.0, color="tab:red", linestyle="--", label=f"limit {direction}"
                )
        if binding:
            xs, ys = zip(*binding, strict=True)
            axes.scatter(xs, ys, s=10, color="black", zorder=3, label="binding")
        axes.set(ylabel="kWh per epoch")
        _run_time_axis(axes, results)
        axes.set_title(f"Link {child} → its parent")
        _finish(figure, axes)
    return _write(figure, path)


class _LinkRow(Protocol):
    @property
    def epoch_id(self) -> int: ...
    @property
    def child(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def flow_wh(self) -> int: ...
    @property
    def capacity_wh(self) -> int | None: ...
    @property
    def shadow_price(self) -> int: ...


class FeederFlows(Protocol):
    """What :func:`plot_link_flows` needs: a run's results and its link rows."""

    @property
    def results(self) -> RunResults: ...
    @property
    def links(self) -> Sequence[_LinkRow]: ...


def _run_time_axis(axes: Axes, results: RunResults) -> None:
    """The same time axis on every per-epoch figure: hours from the run's start, whole run."""
    grid = results.grid
    axes.set(
        xlabel=f"hours since {grid.start:%Y-%m-%d %H:%M} UTC",
        xlim=(0.0, grid.steps * grid.step_s / 3600.0),
    )


def _save(figure: Figure, axes: Axes, path: Path, legend: bool = True) -> Path:
    return _write(_finish(figure, axes, legend), path)


def _finish(figure: Figure, axes: Axes, legend: bool = True) -> Figure:
    if legend and axes.get_legend_handles_labels()[0]:
        # Outside the plotting area: a legend never hides a curve (the evening tariff step).
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def _write(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)
    return path
