"""The community simulator's model: weather and PV, loads and EVs, batteries, agents, KPIs.

Build a :class:`~wattx.sim.scenario.Scenario` (community, place, period; every
random draw seeded), drive a :class:`~wattx.sim.simulation.CommunitySimulation`
epoch by epoch (agents' order intents in, matched fills back), or run the
grid-only baseline with :func:`~wattx.sim.simulation.run_grid_only`; then
:func:`~wattx.sim.report.write_report` checks the energy balance and writes
``index.html``, ``kpis.json`` and the figures. See ``docs/simulation.md``.
"""
