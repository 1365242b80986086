"""docs/workflow.md (the README's picture of the workflow) shows exactly the definition's states and
transitions. The committed diagram is read back on its own terms (its node labels and edges), and
compared with transitions this test derives from the definition itself; then with the generator's
output, so that a changed definition without a regenerated diagram fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from labeling_ops import diagram

NODE = re.compile(r'^\s*(?:subgraph\s+)?(?P<id>\w+)(?:\(\(|\[|\{\{|\{|\(\[)"(?P<label>[^"]+)"')
EDGE = re.compile(
    r"^\s*(?P<source>\w+)\s+(?:-->|--\s+\"[^\"]*\"\s+-->|-\.\s+(?:\"[^\"]*\"|each item)\s+\.->)\s+"
    r"(?P<target>\w+)\s*$"
)
MAP_SUFFIX = " (Distributed Map)"


def _committed(path: Path) -> str:
    text = path.read_text()
    blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert len(blocks) == 1, f"{path}: expected one mermaid block, found {len(blocks)}"
    return blocks[0]


def _diagram_graph(block: str) -> tuple[set[str], set[tuple[str, str]]]:
    """(state names, (source, target) name pairs) as the committed diagram draws them."""
    labels: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    for line in block.splitlines()[1:]:
        if edge := EDGE.match(line):
            edges.add((edge["source"], edge["target"]))
        elif node := NODE.match(line):
            labels[node["id"]] = node["label"].removesuffix(MAP_SUFFIX)
        else:
            assert line.strip() in ("", "end"), f"diagram line not understood: {line!r}"
    unknown = {i for pair in edges for i in pair} - set(labels)
    assert not unknown, f"edges between undeclared nodes: {sorted(unknown)}"
    names = {label for node_id, label in labels.items() if node_id not in ("start", "finish")}
    named = {(labels[s], labels[t]) for s, t in edges}
    return names, named


def _definition_graph(definition: dict[str, Any]) -> tuple[set[str], set[tuple[str, str]]]:
    """The same, derived from the definition here (not by the generator)."""
    names: set[str] = set()
    edges: set[tuple[str, str]] = {("start", definition["StartAt"])}

    def walk(states: dict[str, Any], inner: bool) -> None:
        for name, state in states.items():
            names.add(name)
            targets = [rule["Next"] for rule in state.get("Choices", [])]
            targets += [state[key] for key in ("Next", "Default") if key in state]
            targets += [catch["Next"] for catch in state.get("Catch", [])]
            if not inner and (state.get("End") or state["Type"] in ("Succeed", "Fail")):
                targets.append("end")
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                targets.append(processor["StartAt"])
                walk(processor["States"], True)
            edges.update((name, target) for target in targets)

    walk(definition["States"], False)
    return names, edges


def test_the_committed_diagram_has_the_definitions_states_and_transitions(definition: dict[str, Any]) -> None:
    drawn_states, drawn_edges = _diagram_graph(_committed(diagram.DOCUMENT))
    states, edges = _definition_graph(definition)
    assert drawn_states == states, (
        f"states missing from docs/workflow.md: {sorted(states - drawn_states)}; "
        f"drawn but not in the definition: {sorted(drawn_states - states)} "
        "(regenerate: python -m labeling_ops.diagram)"
    )
    assert drawn_edges == edges, (
        f"transitions missing from docs/workflow.md: {sorted(edges - drawn_edges)}; "
        f"drawn but not in the definition: {sorted(drawn_edges - edges)} "
        "(regenerate: python -m labeling_ops.diagram)"
    )


def test_the_committed_diagram_is_what_the_generator_writes(definition: dict[str, Any]) -> None:
    assert diagram.DOCUMENT.read_text() == diagram.document(definition), (
        "docs/workflow.md is out of date: run python -m labeling_ops.diagram"
    )


def test_a_changed_definition_is_caught(definition: dict[str, Any]) -> None:
    """The comparison is not vacuous: a new state and a rerouted transition both show."""
    changed = {**definition, "States": dict(definition["States"])}
    changed["States"]["Extra State"] = {"Type": "Pass", "End": True}
    changed["States"]["Plan Review"] = {**changed["States"]["Plan Review"], "Next": "Build Manifest"}
    drawn = _diagram_graph(_committed(diagram.DOCUMENT))
    states, edges = _definition_graph(changed)
    assert "Extra State" in states - drawn[0]
    assert ("Plan Review", "Build Manifest") in edges - drawn[1]


def test_state_names_map_to_distinct_node_ids(definition: dict[str, Any]) -> None:
    diagram.check_ids(definition)
    clash = {**definition, "States": {**definition["States"], "Model Running!": {"Type": "Succeed"}}}
    try:
        diagram.check_ids(clash)
    except ValueError as error:
        assert "Model Running" in str(error)
    else:
        raise AssertionError("two states with one node id were not refused")
