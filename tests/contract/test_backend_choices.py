"""The definition branches on the review backend only where review/backends.py knows every name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from labeling_loop.review.backends import BACKENDS

BACKEND_VARIABLE = "$.config.reviewBackend"  # the validated RunConfig's reviewBackend (ValidateInput)


def _states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for inner in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if inner:
                yield from _states(inner["States"])


def _backend_choices(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: state
        for name, state in _states(definition["States"])
        if state["Type"] == "Choice" and any("reviewBackend" in str(rule) for rule in state["Choices"])
    }


def test_the_backend_choice_states_branch_on_the_run_configs_backend_name(definition: dict[str, Any]) -> None:
    choices = _backend_choices(definition)
    assert sorted(choices) == ["Label Studio Review?", "Which Review Backend?"]
    for name, state in choices.items():
        assert [rule["Variable"] for rule in state["Choices"]] == [BACKEND_VARIABLE] * len(
            state["Choices"]
        ), name
        assert all(set(rule) == {"Variable", "StringEquals", "Next"} for rule in state["Choices"]), name


def test_the_backend_choice_states_cover_exactly_the_backends_the_registry_knows(
    definition: dict[str, Any],
) -> None:
    # Every named branch is a known backend, once; the Default serves exactly one backend, so a
    # third backend must get a branch of its own in each Choice rather than fall into another's path.
    for name, state in _backend_choices(definition).items():
        named = [rule["StringEquals"] for rule in state["Choices"]]
        assert len(named) == len(set(named)), name
        assert set(named) <= set(BACKENDS), name
        by_default = set(BACKENDS) - set(named)
        assert len(by_default) == 1 and state["Default"], (name, by_default)
