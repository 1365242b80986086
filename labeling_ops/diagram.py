"""The state machine as a Mermaid flowchart, generated from the definition (never drawn by hand).

    python -m labeling_ops.diagram            # rewrites docs/workflow.md
    python -m labeling_ops.diagram --check    # exits 1 when docs/workflow.md is out of date

Every state is a node named by its state name; every transition is an edge: `Next`, a Choice's
rules and `Default`, a Catch (dashed, labelled with the errors it catches), and the end of the
execution (`End`, Succeed, Fail). A Distributed Map is a subgraph holding its item processor.
tests/contract/test_workflow_diagram.py reads the committed diagram back and compares it with the
definition.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "statemachine" / "labeling_loop.asl.json"
DOCUMENT = ROOT / "docs" / "workflow.md"
START, END = "start", "finish"  # the execution's start and end (not states)

# Node shapes by state type (Mermaid flowchart syntax: open, close).
SHAPES = {
    "Task": ('["', '"]'),
    "Choice": ('{"', '"}'),
    "Wait": ('{{"', '"}}'),
    "Pass": ('["', '"]'),
    "Succeed": ('(["', '"])'),
    "Fail": ('(["', '"])'),
}


@dataclass(frozen=True)
class Edge:
    source: str  # state name, or START
    target: str  # state name, or END
    kind: str  # "next", "choice", "default", "catch", "end"
    label: str = ""


def node_id(name: str) -> str:
    """A Mermaid-safe id for a state name: `Model Running?` -> `Model_Running_`."""
    return re.sub(r"[^A-Za-z0-9]", "_", name)


def check_ids(definition: dict[str, Any]) -> None:
    """Two state names must not give one node id (`A?` and `A!`): the diagram would merge them."""
    seen: dict[str, str] = {}
    for name, *_ in _states(definition["States"]):
        other = seen.setdefault(node_id(name), name)
        if other != name or node_id(name) in (START, END, "end"):
            raise ValueError(f"state {name!r} has the node id of {other!r}: rename one of them")


def _states(
    states: dict[str, Any], inner: bool = False
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], bool]]:
    """(name, state, states of its item processor or {}, inside an item processor?) for every
    state, depth first."""
    for name, state in states.items():
        processor = state.get("ItemProcessor") or state.get("Iterator") or {}
        yield name, state, processor.get("States", {}), inner
        if processor:
            yield from _states(processor["States"], True)


def _choice_label(rule: dict[str, Any]) -> str:
    """A short, readable rule: `$.model.status == RUNNING`, `and(...)`."""
    for combinator in ("And", "Or"):
        if combinator in rule:
            return f"{combinator.lower()}({', '.join(_choice_label(r) for r in rule[combinator])})"
    if "Not" in rule:
        return f"not {_choice_label(rule['Not'])}"
    variable = str(rule.get("Variable", "")).removeprefix("$.").removeprefix("$$.")
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        operator = re.sub(r"(Path)$", "", key)
        operator = {
            "StringEquals": "==",
            "BooleanEquals": "is",
            "NumericEquals": "==",
            "NumericGreaterThan": ">",
            "NumericGreaterThanEquals": ">=",
            "NumericLessThan": "<",
            "TimestampGreaterThanEquals": ">=",
            "IsPresent": "present",
        }.get(operator, operator)
        shown = str(value).removeprefix("$.") if isinstance(value, str) else json.dumps(value)
        return f"{variable} {operator} {shown}"
    return variable


def edges_of(states: dict[str, Any], start_at: str) -> list[Edge]:
    """Every transition of a state list (and of the item processors inside it), in definition order."""
    edges = [Edge(START, start_at, "next")]
    for name, state, processor_states, inner in _states(states):
        if processor_states:
            # the Map's item processor: its own start, and its own end (the Map state's box)
            inner_start = (state.get("ItemProcessor") or state.get("Iterator") or {})["StartAt"]
            edges.append(Edge(name, inner_start, "processor"))
        kind = state["Type"]
        for rule in state.get("Choices", []):
            edges.append(Edge(name, rule["Next"], "choice", _choice_label(rule)))
        if "Default" in state:
            edges.append(Edge(name, state["Default"], "default", "otherwise"))
        if "Next" in state:
            edges.append(Edge(name, state["Next"], "next"))
        for catch in state.get("Catch", []):
            edges.append(Edge(name, catch["Next"], "catch", ", ".join(catch["ErrorEquals"])))
        # An item processor's end is its iteration's, not the execution's: the Map's Next follows.
        if not inner and (state.get("End") or kind in ("Succeed", "Fail")):
            edges.append(Edge(name, END, "end", "" if kind != "Fail" else "fails"))
    return edges


def _quoted(text: str) -> str:
    return text.replace('"', "#quot;")


def mermaid(definition: dict[str, Any]) -> str:
    """The definition as a Mermaid flowchart (top-down)."""
    lines = ["flowchart TD", f'    {START}(("start"))', f'    {END}(("end"))']

    def declare(states: dict[str, Any], indent: str) -> None:
        for name, state in states.items():
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                lines.append(f'{indent}subgraph {node_id(name)}["{_quoted(name)} (Distributed Map)"]')
                declare(processor["States"], indent + "    ")
                lines.append(f"{indent}end")
            else:
                opening, closing = SHAPES.get(state["Type"], ('["', '"]'))
                lines.append(f"{indent}{node_id(name)}{opening}{_quoted(name)}{closing}")

    declare(definition["States"], "    ")
    for edge in edges_of(definition["States"], definition["StartAt"]):
        source, target = node_id(edge.source), node_id(edge.target)
        if edge.kind == "processor":
            lines.append(f"    {source} -. each item .-> {target}")
        elif edge.kind == "catch":
            lines.append(f'    {source} -. "{_quoted(edge.label)}" .-> {target}')
        elif edge.label:
            lines.append(f'    {source} -- "{_quoted(edge.label)}" --> {target}')
        else:
            lines.append(f"    {source} --> {target}")
    return "\n".join(lines) + "\n"


def document(definition: dict[str, Any]) -> str:
    """docs/workflow.md: a short legend and the diagram."""
    check_ids(definition)
    states = sum(1 for _ in _states(definition["States"]))
    return (
        "# The workflow\n\n"
        "Generated from `statemachine/labeling_loop.asl.json` by `python -m labeling_ops.diagram`; do not\n"
        "edit by hand (`tests/contract/test_workflow_diagram.py` fails when the two differ).\n\n"
        f"{states} states. Solid arrows: `Next`, a Choice's rules (labelled) and `Default` (`otherwise`);\n"
        "dashed arrows: a Catch, labelled with the errors it catches, and a Distributed Map's item\n"
        "processor (`each item`, run as child executions). Rectangles are Task states, diamonds Choice,\n"
        "hexagons Wait, rounded boxes Succeed and Fail; an item processor's last state ends its item.\n\n"
        "```mermaid\n" + mermaid(definition) + "```\n"
    )


def load_definition(path: Path = DEFINITION) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labeling_ops.diagram", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/workflow.md is out of date")
    parser.add_argument("--out", type=Path, default=DOCUMENT)
    args = parser.parse_args(argv)
    text = document(load_definition())
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m labeling_ops.diagram", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
