"""The run itself: the target it points at (``targets``), its label on everything it makes
(``runlabel``), what a scenario touches (``touches``), the three-outcome wait (``waits``) and the undo stack
(``undo``).

Imports no other room: every room builds on this one."""
