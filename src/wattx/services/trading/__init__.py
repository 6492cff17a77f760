"""The market's use cases: orders and trades, epochs and their clock, zones, the events and
metrics they publish, and the energy flow shown live."""
