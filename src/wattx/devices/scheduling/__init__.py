"""Battery scheduling: the pairing scheduler and the day-ahead linear program."""
