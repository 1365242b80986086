"""The code's shape, as the README's layout section promises it: no function in the layer over 60
lines or 6 parameters, no handler function over 40 lines, except the ones the README lists with
their reason. A new long function fails here until it is split or listed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER_LINES, LAYER_PARAMS, HANDLER_LINES = 60, 6, 40


def _functions(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, lines, parameters) of every function in a module; self/cls not counted."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = child.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
                params = len([n for n in names if n not in ("self", "cls")])
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                lines = (child.end_lineno or child.lineno) - start + 1
                found.append((f"{prefix}{child.name}", lines, params))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(path.read_text()), "")
    return found


def _readme_exceptions() -> set[str]:
    """`path::function` entries of the README's list of long functions."""
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([\w/.]+\.py::[\w.]+)`", layout))


def _over_limits() -> dict[str, str]:
    over: dict[str, str] = {}
    for path in sorted((ROOT / "layer").rglob("*.py")):
        for name, lines, params in _functions(path):
            if lines > LAYER_LINES or params > LAYER_PARAMS:
                over[f"{path.relative_to(ROOT)}::{name}"] = f"{lines} lines, {params} parameters"
    for path in sorted((ROOT / "functions").glob("*/app.py")):
        for name, lines, _params in _functions(path):
            if lines > HANDLER_LINES:
                over[f"{path.relative_to(ROOT)}::{name}"] = f"{lines} lines"
    return over


def test_no_long_function_outside_the_readmes_exceptions():
    over = _over_limits()
    unlisted = {name: size for name, size in over.items() if name not in _readme_exceptions()}
    assert not unlisted, f"split these or list them with a reason in the README's layout section: {unlisted}"


def test_every_listed_exception_is_still_long():
    over = _over_limits()
    stale = sorted(name for name in _readme_exceptions() if name not in over)
    assert not stale, f"these are no longer over the limits: drop them from the README's list: {stale}"


def test_the_check_sees_a_long_function(tmp_path):
    module = tmp_path / "long.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(LAYER_LINES))
    module.write_text(f"def long(a, b, c, d, e, f, g):\n{body}\n")
    [(name, lines, params)] = _functions(module)
    assert (name, lines, params) == ("long", LAYER_LINES + 1, 7)
