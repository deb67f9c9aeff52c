"""Binds every feature file; the step definitions live in the steps/*_steps.py plugins."""

from pytest_bdd import scenarios

scenarios(".")
