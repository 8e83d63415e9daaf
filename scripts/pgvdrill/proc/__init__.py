"""Processes: the one subprocess runner, long-running programs, process groups, signals
and waiting until something holds."""
