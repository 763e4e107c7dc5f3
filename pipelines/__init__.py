"""Dagster wiring: partitions, jobs, sensors, schedules, resources and launchers."""
