"""`labeling-loop follow` (and the demo) name the phase a run is in from the state it entered last:
every state of the definition's top level has a phase, so a new state never shows as its raw name
(the Map states' own item states run in child executions, which follow does not read)."""

from __future__ import annotations

from typing import Any

from labeling_ops.progress import PHASES


def test_every_top_level_state_has_a_phase(definition: dict[str, Any]) -> None:
    states = list(definition["States"])
    assert [name for name in states if name not in PHASES] == []
    assert sorted(set(PHASES) - set(states)) == [], "phases of states the definition no longer has"
