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
from typing import Any, Literal, get_args, get_origin

from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.run_config import MAX_LABELS_PER_JOB, numeric_bounds
from labeling_loop.kernel.run_input import RunInput, _describe_errors, validate_input
from labeling_loop.kernel.settings import StackSettings
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from labeling_ops.aws import OpsError, StackInfo

# Execution names (docs/aws-facts.md §4.2): 1-80 characters, none of these.
NAME_FORBIDDEN = re.compile(r"[\s?*<>{}\[\]\"#%\\^|~`$&,;:/\x00-\x1f\x7f]")


def flag_name(field: str) -> str:
    """`minConfidence` -> `--min-confidence`."""
    return "--" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", field).lower()


def _choices(annotation: Any) -> list[str]:
    """The words a field accepts (its Literal values), inside unions and Annotated."""
    if get_origin(annotation) is Literal:
        return [str(value) for value in get_args(annotation)]
    return [word for arg in get_args(annotation) for word in _choices(arg)]


def _number_bounds(name: str) -> str:
    bounds = numeric_bounds().get(name)
    if bounds is None:
        return ""
    low, high, integer = bounds
    show = (lambda v: f"{int(v):,}") if integer else (lambda v: f"{v:g}")
    return f"{show(low)}-{show(high)}"


def field_help(name: str, field: FieldInfo) -> tuple[str, str]:
    """(metavar, help) for an input field: its description, what it accepts, and its default, all
    read from RunInput and RunConfig's field types (the bounds live there, once)."""
    choices, bounds = _choices(field.annotation), _number_bounds(name)
    if name == "labels":
        metavar, accepts = "LABEL,...", f"comma-separated, at most {MAX_LABELS_PER_JOB}"
    elif name == "autoAcceptConfidenceByLabel":
        metavar, accepts = "JSON", "a JSON object of label: confidence (0-100), e.g. '{\"cat\": 72.5}'"
    elif bounds and choices:
        metavar, accepts = "N|" + "|".join(choices), f"{bounds} or {', '.join(choices)}"
    elif bounds:
        metavar, accepts = "N", bounds
    elif choices:
        metavar, accepts = "{" + ",".join(choices) + "}", ""
    elif name.endswith("Arn"):
        metavar, accepts = "ARN", ""
    elif name in ("images", "output"):
        metavar, accepts = "S3URI", ""
    else:
        metavar, accepts = "TEXT", ""
    if field.default_factory is not None or field.default is None:
        default = "none" if field.default_factory is not None else "the stack's setting"
    else:
        default = str(field.default).lower() if isinstance(field.default, bool) else str(field.default)
    details = "; ".join(part for part in (accepts, f"default: {default}") if part)
    return metavar, f"{field.description or name} ({details})".replace("%", "%%")


def add_input_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per input field, generated from RunInput (so a new field gets its flag and its help):
    booleans as --flag / --no-flag, the rest taking a value checked by the workflow's own model."""
    group = parser.add_argument_group("run input (each flag overrides the same field of --input)")
    for name, field in RunInput.model_fields.items():
        metavar, text = field_help(name, field)
        if field.annotation in (bool, bool | None):
            group.add_argument(
                flag_name(name),
                dest=f"in_{name}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
        else:
            group.add_argument(flag_name(name), dest=f"in_{name}", metavar=metavar, help=text)


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
        elif isinstance(value, bool):
            raw[name] = value
        elif name == "autoAcceptConfidenceByLabel":
            try:
                raw[name] = json.loads(str(value))
            except ValueError:
                raise OpsError(
                    f"{flag_name(name)}: not JSON; give an object such as '{{\"cat\": 72.5}}'"
                ) from None
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
