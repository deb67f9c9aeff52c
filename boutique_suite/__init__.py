"""The suite's library, in rooms by role. A room imports only the rooms before it in ``ROOMS`` (and itself);
``tests/test_import_graph.py`` holds that, and that no module imports another that imports it back.
Each room's docstring says what belongs there. The map: docs/architecture.md."""

ROOMS = ("run", "clients", "context", "reporting", "expectations", "actions")
