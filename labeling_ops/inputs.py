"""A run's input from a file and flags, checked here with the workflow's own model before anything is
sent: the same `RunInput` (field names, types, bounds) and, when the ValidateInput function's
environment is readable, the same `validate_input` the first state runs (merged defaults, buckets,
region, and what the stack grants: projects, inference units, workforces, its Label Studio). The
project's labels, which the first state also reads, are left to it."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from labeling_loop.errors import InvalidInput
from labeling_loop.run_input import RunInput, _describe_errors, validate_input
from labeling_loop.settings import StackSettings
from pydantic import ValidationError

from labeling_ops.aws import OpsError, StackInfo

# Execution names (docs/aws-facts.md §4.2): 1-80 characters, none of these.
NAME_FORBIDDEN = re.compile(r"[\s?*<>{}\[\]\"#%\\^|~`$&,;:/\x00-\x1f\x7f]")


def flag_name(field: str) -> str:
    """`minConfidence` -> `--min-confidence`."""
    return "--" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", field).lower()


def add_input_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per input field, generated from RunInput (so a new field gets its flag)."""
    group = parser.add_argument_group("run input (each flag overrides the same field of --input)")
    for name, field in RunInput.model_fields.items():
        if name == "incremental":
            group.add_argument(
                flag_name(name), dest=f"in_{name}", action="store_true", default=None, help="incremental run"
            )
        elif name == "labels":
            group.add_argument(
                flag_name(name), dest=f"in_{name}", metavar="A,B,...", help="labels reviewers may add"
            )
        else:
            group.add_argument(flag_name(name), dest=f"in_{name}", metavar="VALUE", help=field.description)


def _value(text: str) -> Any:
    """A flag's text as the JSON input would hold it: numbers and true/false as such."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) else text


def gather(input_file: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """The input file (JSON object) with the flags over it."""
    raw: dict[str, Any] = {}
    if input_file:
        path = Path(input_file)
        if not path.is_file():
            raise OpsError(f"--input {input_file}: no such file")
        try:
            loaded = json.loads(path.read_text())
        except ValueError as error:
            raise OpsError(f"--input {input_file}: not JSON ({error})") from None
        if not isinstance(loaded, dict):
            raise OpsError(f"--input {input_file}: must hold a JSON object, not {type(loaded).__name__}")
        raw = loaded
    for name in RunInput.model_fields:
        value = getattr(args, f"in_{name}", None)
        if value is None:
            continue
        if name == "labels":
            raw[name] = [label.strip() for label in str(value).split(",") if label.strip()]
        elif name == "incremental":
            raw[name] = bool(value)
        else:
            raw[name] = _value(str(value))
    return raw


def check_name(name: str) -> str:
    if not 1 <= len(name) <= 80 or NAME_FORBIDDEN.search(name):
        raise OpsError(
            f"--name {name!r}: 1-80 characters, no spaces, slashes, colons or quotes "
            "(it becomes the run id and the labeling jobs' names)"
        )
    return name


def check(raw: dict[str, Any], stack: StackInfo, name: str) -> str:
    """Validate as the first state will; return what was checked ("fields" or "fields and stack
    defaults"). Raises OpsError naming the field."""
    check_name(name)
    try:
        RunInput.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as error:
        raise OpsError(f"input: {_describe_errors(error)}") from None
    if stack.run_defaults is None:
        return "fields (the stack's defaults were not readable: the first state checks the rest)"
    execution_arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    settings = StackSettings.model_validate(
        {**(stack.validator_environment or {}), "AWS_REGION": stack.region}
    )
    try:
        validate_input(raw, execution_name=name, execution_arn=execution_arn, stack=settings)
    except InvalidInput as error:
        raise OpsError(f"input: {error}") from None
    return "fields and the stack's defaults"
