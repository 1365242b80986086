"""The execution history budget is counted from the definition, not assumed.

A Standard execution fails at 25,000 history events, and no Catch runs then (docs/aws-facts.md §4.2,
§4.10). The first state refuses poll intervals that could get there (RunConfig.history_problem),
using how many events one turn of each poll loop records. These tests find every loop in the
definition (a cycle of states), count its events by state type, and fail when the numbers the
validator uses no longer match: add a state to a loop, and the validator learns of it here."""

from __future__ import annotations

from typing import Any

import deployed_stack
import pytest
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.run_config import (
    EVENTS_PER_JOB_POLL,
    EVENTS_PER_MODEL_POLL,
    EVENTS_PER_REVIEW_POLL,
    EVENTS_PER_TRAINING_POLL,
    OTHER_EVENTS,
    RunConfig,
)
from labeling_loop.kernel.run_input import validate_input

# History events a state records when it runs once without error (docs/aws-facts.md §4.2): a Task
# TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited; the others
# Entered and Exited.
EVENTS = {"Task": 5, "Wait": 2, "Choice": 2, "Pass": 2, "Succeed": 1, "Fail": 1, "Map": 4, "Parallel": 4}


def _next_states(state: dict[str, Any]) -> set[str]:
    targets = {state.get("Next"), state.get("Default")}
    targets |= {choice.get("Next") for choice in state.get("Choices", [])}
    targets |= {catch.get("Next") for catch in state.get("Catch", [])}
    return {t for t in targets if t}


def loops(states: dict[str, Any]) -> list[list[str]]:
    """Every simple cycle of the state graph (there are a few, each short), as state names."""
    found: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for target in sorted(_next_states(states[path[-1]])):
            if target == path[0]:
                found.append(path)
            elif target not in path and target > path[0]:
                walk([*path, target])

    for name in sorted(states):
        walk([name])
    return found


def events_per_turn(states: dict[str, Any], loop: list[str]) -> int:
    return sum(EVENTS[states[name]["Type"]] for name in loop)


# The one cycle that is not a poll: after the first review wave, the audit gate may send the
# auto-accepted images to people in a second wave through the same review states. It runs at most
# once: its Choice routes only wave 1 there, and the state it enters makes the plan wave 2.
GATE_CHOICE, SECOND_WAVE = "Send Auto-Accepted To People?", "Plan Second Review"


def _second_wave_loops(states: dict[str, Any]) -> list[list[str]]:
    return [loop for loop in loops(states) if GATE_CHOICE in loop]


def _loop_through(states: dict[str, Any], name: str) -> list[str]:
    """The poll loop through a state (the shortest cycle: the second wave's passes through it too)."""
    return min((loop for loop in loops(states) if name in loop and GATE_CHOICE not in loop), key=len)


def test_the_second_wave_runs_at_most_once(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert _second_wave_loops(states), "the audit gate's second wave is a cycle of the definition"
    (rule,) = states[GATE_CHOICE]["Choices"]
    assert {"Variable": "$.plan.wave", "NumericEquals": 1} in rule["And"] and rule["Next"] == SECOND_WAVE
    # The only way into the second wave sets the plan from the second-wave action (wave 2).
    second = states[SECOND_WAVE]
    assert second["ResultPath"] == "$.plan" and second["Parameters"]["Payload"]["action"] == "second-wave"
    assert second["ResultSelector"]["wave.$"] == "$.Payload.wave"


def test_the_model_start_poll_records_what_the_validator_assumes(definition: dict[str, Any]) -> None:
    states = definition["States"]
    loop = _loop_through(states, "Wait For Model")
    assert set(loop) == {"Model Running?", "Wait For Model", "Check Model"}
    assert events_per_turn(states, loop) == EVENTS_PER_MODEL_POLL


def test_the_label_studio_review_poll_records_what_the_validator_assumes(definition: dict[str, Any]) -> None:
    states = definition["States"]
    loop = _loop_through(states, "Wait For Label Studio Reviewers")
    assert events_per_turn(states, loop) == EVENTS_PER_REVIEW_POLL


def test_the_training_poll_records_what_the_validator_assumes(definition: dict[str, Any]) -> None:
    states = definition["States"]
    loop = _loop_through(states, "Wait For Training")
    assert set(loop) == {"Training Done?", "Wait For Training", "Advance Training"}
    assert events_per_turn(states, loop) == EVENTS_PER_TRAINING_POLL


MODEL = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"


def _config(**fields: Any) -> RunConfig:
    # The stack names the model (runs may only start models of the projects it allows).
    parameters = {
        "ImagesBucketName": "images-bucket",
        "OutputBucketName": "output-bucket",
        "ProjectVersionArn": MODEL,
    }
    raw = {
        "projectVersionArn": MODEL,
        "workteamArn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
        **fields,
    }
    return validate_input(
        raw,
        execution_name="run-1",
        execution_arn=deployed_stack.execution_arn("run-1"),
        stack=deployed_stack.stack_settings(parameters),
    )


def test_the_validator_counts_training_polls_only_when_the_run_trains() -> None:
    quiet = _config(train=False, trainingPollSeconds=60, trainingTimeoutHours=72)
    training = _config(train=True, trainingPollSeconds=600, trainingTimeoutHours=24)
    polls = 24 * 3600 // 600 + 1
    assert (
        training.history_events()["run"] - quiet.history_events()["run"] == polls * EVENTS_PER_TRAINING_POLL
    )
    # a training poll every minute for 72 hours would cross the limit: refused, naming the field
    with pytest.raises(InvalidInput, match="trainingPollSeconds"):
        _config(train=True, trainingPollSeconds=60, trainingTimeoutHours=72)


def test_a_labeling_jobs_poll_records_what_the_validator_assumes(definition: dict[str, Any]) -> None:
    child = definition["States"]["Run Labeling Jobs"]["ItemProcessor"]["States"]
    # The longest turn: a poll that also passes the deadline check (the stop happens once).
    turns = [events_per_turn(child, loop) for loop in loops(child) if "Stop Labeling Job" not in loop]
    assert max(turns) == EVENTS_PER_JOB_POLL


@pytest.mark.parametrize("where", ["run", "labeling job"])
def test_no_other_loop_can_grow_a_history(definition: dict[str, Any], where: str) -> None:
    # Every loop is a poll the validator bounds: an unbounded loop elsewhere would escape the budget.
    states = (
        definition["States"]
        if where == "run"
        else definition["States"]["Run Labeling Jobs"]["ItemProcessor"]["States"]
    )
    waits = {name for name, state in states.items() if state["Type"] == "Wait"}
    for loop in loops(states):
        if GATE_CHOICE in loop:
            continue  # the second wave: once at most (test_the_second_wave_runs_at_most_once)
        assert waits & set(loop), f"a loop without a Wait (a busy loop): {loop}"


def test_the_straight_path_fits_in_what_the_validator_leaves_for_it(definition: dict[str, Any]) -> None:
    # Every state of the run once, and every retry of every state at its maximum (a failed attempt
    # records scheduled, started, failed), stays within what the validator leaves besides the polls.
    # The states of the second wave count twice: it runs them once more.
    states = definition["States"]
    twice = {name for loop in _second_wave_loops(states) for name in loop}
    runs = {name: 2 if name in twice else 1 for name in states}
    once = sum(runs[name] * EVENTS[state["Type"]] for name, state in states.items())
    retries = sum(
        runs[name] * retry.get("MaxAttempts", 3) * 3
        for name, state in states.items()
        for retry in state.get("Retry", [])
    )
    assert once + retries < OTHER_EVENTS, (once, retries)
