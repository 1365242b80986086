"""Run settings have one source of truth: the field types in labeling_loop/kernel/run_config.py. The template
repeats their bounds as parameter MinValue/MaxValue/AllowedValues (CloudFormation checks them at
deploy time); these tests fail when the two disagree, and when a template parameter stops reaching
the run settings."""

from __future__ import annotations

import json
import re
from typing import Any, get_args

import pytest
from labeling_loop.kernel.run_config import RunConfig, numeric_bounds
from labeling_loop.kernel.run_input import FROM_THE_EXECUTION, FROM_THE_STACK_ONLY, RunInput

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def run_defaults_text(sam_template: dict[str, Any]) -> str:
    """The RUN_DEFAULTS value of ValidateInputFunction as written: a Fn::Sub over the parameters."""
    variables = sam_template["Resources"]["ValidateInputFunction"]["Properties"]["Environment"]["Variables"]
    sub = variables["RUN_DEFAULTS"]["Fn::Sub"]
    return str(sub[0] if isinstance(sub, list) else sub)


def parameter_of_each_field(sam_template: dict[str, Any]) -> dict[str, str]:
    """Input field -> the one template parameter its default comes from."""
    # Substitute each ${Name} with a JSON string naming it, so the document parses as JSON.
    text = PLACEHOLDER.sub(lambda m: f"@{m.group(1)}@", run_defaults_text(sam_template))
    text = re.sub(r"(?<![\"\w/])(@\w+@)(?![\"\w])", r'"\1"', text)
    document = json.loads(text)
    fields: dict[str, str] = {}
    for field, value in document.items():
        names = [n for n in re.findall(r"@(\w+)@", str(value)) if n in sam_template["Parameters"]]
        if len(names) == 1:
            fields[field] = names[0]
    return fields


def test_every_stack_default_names_an_input_field(sam_template: dict[str, Any]) -> None:
    # GIVEN the stack's defaults as the template builds them
    text = PLACEHOLDER.sub("0", run_defaults_text(sam_template))
    # THEN it is one JSON object whose keys are all input fields (a typo would reach no setting)
    keys = set(json.loads(text))
    assert keys <= set(RunInput.model_fields), keys - set(RunInput.model_fields)
    # AND it substitutes only template parameters (and the output bucket, created or named)
    used = set(PLACEHOLDER.findall(run_defaults_text(sam_template)))
    assert used - {"Bucket"} <= set(sam_template["Parameters"]), used - set(sam_template["Parameters"])


def test_numeric_parameters_have_the_bounds_of_their_fields(sam_template: dict[str, Any]) -> None:
    # GIVEN each numeric run setting and the template parameter that gives its default
    parameters = sam_template["Parameters"]
    mapping = parameter_of_each_field(sam_template)
    checked = []
    for field, (low, high, integer) in numeric_bounds().items():
        if field not in mapping:
            continue
        spec = parameters[mapping[field]]
        if spec["Type"] != "Number":
            continue  # a String parameter with a pattern (autoAcceptConfidence: a number or "off")
        # THEN the template allows exactly what the field allows
        assert (float(spec["MinValue"]), float(spec["MaxValue"])) == (low, high), (field, mapping[field])
        # AND its default is a valid value of the field
        default = float(spec["Default"])
        assert low <= default <= high and (not integer or default.is_integer()), (field, default)
        checked.append(field)
    assert len(checked) >= 10, checked


def test_auto_accept_parameter_accepts_off_and_the_fields_range(sam_template: dict[str, Any]) -> None:
    spec = sam_template["Parameters"][parameter_of_each_field(sam_template)["autoAcceptConfidence"]]
    pattern = re.compile(spec["AllowedPattern"])
    low, high, _ = numeric_bounds()["autoAcceptConfidence"]
    for value in ("off", str(int(low)), "50", "99.5", str(int(high))):
        assert pattern.fullmatch(value), value
    for value in ("101", "-1", "on", ""):
        assert not pattern.fullmatch(value), value


@pytest.mark.parametrize("field", ["reviewBackend"])
def test_choice_parameters_allow_the_fields_choices(sam_template: dict[str, Any], field: str) -> None:
    spec = sam_template["Parameters"][parameter_of_each_field(sam_template)[field]]
    choices = set(get_args(RunConfig.model_fields[field].annotation))
    assert set(spec["AllowedValues"]) == choices
    assert spec["Default"] in choices


def test_input_and_resolved_config_have_the_same_fields(sam_template: dict[str, Any]) -> None:
    # Who the run is comes from the execution, everything else from the input or the stack; the
    # fields the stack alone decides (where the Label Studio token goes) are no run settings.
    assert set(RunInput.model_fields) - set(FROM_THE_STACK_ONLY) | FROM_THE_EXECUTION == set(
        RunConfig.model_fields
    )
    # AND each of those names the stack parameter that decides it
    assert set(FROM_THE_STACK_ONLY.values()) <= set(sam_template["Parameters"])


def test_review_budget_parameter_accepts_none_and_the_fields_range(sam_template: dict[str, Any]) -> None:
    # GIVEN the ReviewBudget parameter (a String: a count, or "none")
    spec = sam_template["Parameters"][parameter_of_each_field(sam_template)["reviewBudget"]]
    pattern = re.compile(spec["AllowedPattern"])
    low, high, integer = numeric_bounds()["reviewBudget"]
    # THEN it takes "none" (its default) and the field's counts, nothing else
    assert spec["Default"] == "none" and integer
    for value in ("none", str(int(low)), "30", "2000", str(int(high))):
        assert pattern.fullmatch(value), value
    for value in ("0", "-1", "2.5", "off", "", "1e3"):
        assert not pattern.fullmatch(value), value
