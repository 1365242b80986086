"""The handlers' event models (kernel/handler_events.py): what parses, and what a malformed event says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from labeling_loop.kernel import handler_events as events
from labeling_loop.kernel.errors import InvalidEvent
from labeling_loop.kernel.handler_events import parse
from labeling_loop.kernel.run_config import RunConfig, from_state
from lambda_harness import EVENTS, load_event


def _config() -> dict[str, Any]:
    return dict(load_event("list_images")["config"])


def _handler_of(fixture: Path) -> str:
    """tests/events/<handler>[_<variant>].json: the longest handler name the fixture's name starts with."""
    names = [
        name for name in events.BY_HANDLER if fixture.stem == name or fixture.stem.startswith(name + "_")
    ]
    return max(names, key=len, default="")


@pytest.mark.parametrize(
    "fixture",
    [path for path in sorted(EVENTS.glob("*.json")) if _handler_of(path)],
    ids=lambda path: path.stem,
)
def test_every_event_fixture_parses_with_its_handlers_model(fixture: Path) -> None:
    # GIVEN an event fixture of a handler (tests/events/<handler>*.json)
    # WHEN it is parsed with that handler's model
    parsed = parse(events.BY_HANDLER[_handler_of(fixture)], load_event(fixture.name))
    # THEN it parses, its config as the RunConfig `from_state` reads
    config = getattr(parsed, "config", None)
    if config is not None:
        assert config == from_state(load_event(fixture.name)["config"])


def test_the_config_is_the_run_config_with_the_derived_keys_dropped() -> None:
    # GIVEN a state's config, with the keys the first state derives (runPrefix...) beside RunConfig's
    state_config = _config()
    assert set(state_config) - set(RunConfig.model_fields), "the fixture carries derived keys"
    # WHEN a handler's event is parsed
    parsed = parse(events.LIST_IMAGES, {"config": state_config})
    # THEN its config is what from_state reads
    assert parsed.config == from_state(state_config)


def test_each_action_gets_its_own_model_with_the_fields_it_needs() -> None:
    acquire = parse(events.MODEL_CONTROL, {"action": "acquire", "config": _config(), "imagesToInfer": "12"})
    assert isinstance(acquire, events.AcquireModel) and acquire.images_to_infer == 12
    check = parse(
        events.MODEL_CONTROL,
        {"action": "check", "config": _config(), "model": {"status": "X"}, "imagesToInfer": 1},
    )
    assert isinstance(check, events.CheckModel) and check.model == {"status": "X"}
    release = parse(events.MODEL_CONTROL, {"action": "release", "config": _config()})
    assert isinstance(release, events.ReleaseModel) and release.model is None


def test_a_missing_field_names_the_handler_the_action_and_the_field() -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse(events.MODEL_CONTROL, {"action": "check", "config": _config(), "imagesToInfer": 3})
    assert str(raised.value) == "model_control event (action 'check'): model: Field required"


def test_a_field_of_the_wrong_type_is_named_without_its_value() -> None:
    # The message is the execution's error, which whoever reads the history sees: no values in it.
    with pytest.raises(
        InvalidEvent, match=r"^model_control event \(action 'acquire'\): imagesToInfer: "
    ) as raised:
        parse(events.MODEL_CONTROL, {"action": "acquire", "config": _config(), "imagesToInfer": "SECRET-ish"})
    assert "SECRET-ish" not in str(raised.value)


def test_a_bad_config_names_the_config_field() -> None:
    config = {**_config(), "minConfidence": "high"}
    with pytest.raises(InvalidEvent, match=r"^list_images event: config\.minConfidence: ") as raised:
        parse(events.LIST_IMAGES, {"config": config})
    assert "high" not in str(raised.value)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"action": "restart"},
            "model_control event: action: 'restart' is not one of 'acquire', 'check', 'release'",
        ),
        (
            {},
            "model_control event: action: missing or not a string, not one of 'acquire', 'check', 'release'",
        ),
        ({"action": ["acquire"]}, "model_control event: action: missing or not a string, not one of"),
    ],
    ids=["unknown", "missing", "not-a-string"],
)
def test_an_unknown_or_missing_action_is_rejected(event: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse(events.MODEL_CONTROL, {**event, "config": _config(), "imagesToInfer": 1})
    assert str(raised.value).startswith(expected)


def test_notify_tells_its_events_apart_by_event() -> None:
    with pytest.raises(
        InvalidEvent, match=r"^notify event: event: 'started' is not one of 'review', 'ended', 'failed'"
    ):
        parse(events.NOTIFY, {"event": "started", "config": _config()})
    ended = parse(
        events.NOTIFY, {"event": "ended", "config": _config(), "result": {}, "next": {"training": {}}}
    )
    assert isinstance(ended, events.NotifyEnded) and ended.next_step == {"training": {}}


def test_a_key_the_model_does_not_read_is_rejected() -> None:
    # The definition is the only sender: a key no model reads is a renamed or misspelt field.
    with pytest.raises(
        InvalidEvent, match=r"^list_images event: imagesToInfer: Extra inputs are not permitted$"
    ):
        parse(events.LIST_IMAGES, {"config": _config(), "imagesToInfer": 3})


def test_an_event_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match=r"^train_model event: not a JSON object but list$"):
        parse(events.TRAIN_MODEL, [])
    with pytest.raises(InvalidEvent, match=r"^list_images event: not a JSON object but NoneType$"):
        parse(events.LIST_IMAGES, None)


def test_plan_review_plans_when_no_action_is_sent() -> None:
    listing = {"imagesListed": 4, "imagesToInfer": 3, "skippedAtListing": 1}
    planned = parse(events.PLAN_REVIEW, {"config": _config(), "listing": listing})
    assert isinstance(planned, events.PlanReview) and planned.listing.images_to_infer == 3
    # The listing travels on whole: the keys no state reads here stay in it.
    assert planned.listing.model_extra == {"skippedAtListing": 1}


def test_the_review_wave_comes_from_the_plan_and_is_1_before_any_plan() -> None:
    second = parse(events.COLLECT_LABELING_JOBS, {"config": _config(), "plan": {"wave": 2}})
    first = parse(events.COLLECT_LABELING_JOBS, {"config": _config(), "plan": {}})
    preflight = parse(events.LABELSTUDIO_REVIEW, {"action": "preflight", "config": _config()})
    assert (second.wave, first.wave, preflight.wave) == (2, 1, 1)
    with pytest.raises(
        InvalidEvent, match=r"^labelstudio_review event \(action 'check'\): plan: Field required$"
    ):
        parse(events.LABELSTUDIO_REVIEW, {"action": "check", "config": _config()})


def test_training_reads_the_manifests_image_count_from_the_result() -> None:
    result = {"counts": {"imagesInManifest": 7}}
    started = parse(events.TRAIN_MODEL, {"action": "start", "config": _config(), "result": result})
    assert isinstance(started, events.StartTraining) and started.images_in_manifest == 7
    without = parse(events.TRAIN_MODEL, {"action": "start", "config": _config()})
    assert isinstance(without, events.StartTraining) and without.images_in_manifest == 0


def test_the_execution_status_change_is_read_for_its_arn_and_status_only() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:loop:run-1"
    event = {"source": "aws.states", "detail": {"executionArn": arn, "status": "ABORTED", "input": "{}"}}
    parsed = parse(events.CLEAN_UP_ENDED_RUN, event)
    assert (parsed.detail.execution_arn, parsed.detail.status) == (arn, "ABORTED")
    with pytest.raises(InvalidEvent, match=r"^clean_up_ended_run event: detail\.status: Field required$"):
        parse(events.CLEAN_UP_ENDED_RUN, {"detail": {"executionArn": arn}})


def test_the_validate_input_event_takes_any_input() -> None:
    names = {"executionName": "run-1", "executionArn": "arn:aws:states:us-east-1:1:execution:m:run-1"}
    assert parse(events.VALIDATE_INPUT, names).input is None
    assert parse(events.VALIDATE_INPUT, {**names, "input": "not an object"}).input == "not an object"
    with pytest.raises(InvalidEvent, match=r"^validate_input event: executionArn: Field required$"):
        parse(events.VALIDATE_INPUT, {"executionName": "run-1"})
