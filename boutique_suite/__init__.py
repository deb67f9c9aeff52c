"""Shared machinery of the suite: targets, waits, cluster actions, faults, evidence."""
