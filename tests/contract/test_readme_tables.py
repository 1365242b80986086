"""The README's two reference tables say what the stack and an execution input accept: every stack
parameter in template.yaml is in the deploy table with its default, every RunInput field is in the
input table, and every [Parameter] the input table cites is a parameter with that default. A
parameter or field added, renamed or removed without the README fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from labeling_loop.kernel.run_input import RunInput
from markdown_tables import table_rows

NAME = re.compile(r"`([A-Za-z]+)`")
CITED = re.compile(r"\[([A-Za-z]+)\](?:\s+`?([^`\s|]+)`?)?")
PLAIN_VALUE = re.compile(r"^`?([\w.()\- ]+?)`?$")


def _table(readme: str, header: str) -> list[list[str]]:
    """The rows (cells, stripped) of the README table whose header line is `header`."""
    return table_rows(readme, header, "README")


def _readme(repo_root: Path) -> str:
    return (repo_root / "README.md").read_text()


def _default(parameter: dict[str, Any]) -> str:
    return str(parameter.get("Default", "")).strip()


def test_the_deploy_table_lists_every_stack_parameter_with_its_default(
    repo_root: Path, sam_template: dict[str, Any]
) -> None:
    parameters = sam_template["Parameters"]
    listed: list[str] = []
    wrong_defaults = []
    for names_cell, default_cell, _ in _table(_readme(repo_root), "| parameter | default | what it is |"):
        names = NAME.findall(names_cell)
        listed += names
        defaults = [d.strip() for d in default_cell.split(", ")]
        if len(defaults) != len(names):
            continue  # a sentence, not one default per parameter
        for name, shown in zip(names, defaults, strict=True):
            value = PLAIN_VALUE.match(shown)
            actual = _default(parameters.get(name, {}))
            if value and actual and value[1] != actual:
                wrong_defaults.append(f"{name}: README {value[1]!r}, template {actual!r}")

    assert sorted(set(listed) - set(parameters)) == [], "README lists parameters the template lacks"
    assert sorted(set(parameters) - set(listed)) == [], "template parameters missing from the README"
    assert wrong_defaults == []


def test_the_input_table_lists_every_input_field_and_cites_real_parameters(
    repo_root: Path, sam_template: dict[str, Any]
) -> None:
    parameters = sam_template["Parameters"]
    rows = _table(_readme(repo_root), "| field | default | meaning |")
    fields = [NAME.findall(row[0])[0] for row in rows]
    problems = []
    for row in rows:
        cited = CITED.findall(row[1]) + [(name, "") for name, _ in CITED.findall(row[2])]
        for name, shown in cited:
            if name not in parameters:
                problems.append(f"{row[0]} cites [{name}], not a template parameter")
            elif shown and _default(parameters[name]) and re.fullmatch(r"[\w.]+", shown):
                if shown != _default(parameters[name]):
                    problems.append(
                        f"[{name}] {shown}: the template's default is {_default(parameters[name])}"
                    )

    assert sorted(set(fields) - set(RunInput.model_fields)) == [], "README lists fields RunInput lacks"
    assert sorted(set(RunInput.model_fields) - set(fields)) == [], "input fields missing from the README"
    assert problems == []


def test_the_troubleshooting_table_and_the_cli_name_the_same_errors(repo_root: Path) -> None:
    """What `labeling-loop show` appends as "what to do" (labeling_ops/failures.py) is there for
    every error the README's troubleshooting table names, and for no other."""
    from labeling_ops.failures import FIXES

    rows = _table(_readme(repo_root), "| error | what happened | what to do |")
    named = {
        name
        for row in rows
        for name in re.findall(r"`([A-Za-z][A-Za-z.]*)`", row[0])
        if "..." not in name and name != "States"
    }
    assert sorted(named - set(FIXES)) == [], "README errors without a fix in the CLI"
    assert sorted(set(FIXES) - named) == [], "CLI fixes for errors the README does not list"
