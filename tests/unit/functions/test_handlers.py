"""The Lambda handlers as Step Functions calls them: event fixtures (tests/events/<handler>.json),
the environment the template sets, moto, a Lambda context, Powertools tracing and metrics off.

Each handler's answer is checked against what the state machine's ResultSelector reads from it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from fixtures_aws import (
    IMAGES_BUCKET,
    MODEL_ARN,
    OUTPUT_BUCKET,
    REGION,
    REPO,
    WORKTEAM_ARN,
    FakeCustomLabels,
    FakeExecutions,
    FakeLabelingJobs,
    FakeLambdaContext,
    ServiceError,
    answer_with,
    execution_arn,
    jpeg,
    load_event,
    load_handler,
    png,
    put_object,
    read_json,
    read_jsonl,
    validate_input_environment,
    write_jsonl,
)
from labeling_loop.inference import claims, model_lease
from labeling_loop.kernel.errors import (
    InvalidEvent,
    InvalidInput,
    ModelStartTimeoutError,
    TransientServiceError,
)
from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.run_config import PREDICTION_FLOOR, from_state
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.kernel.settings import SettingsError
from labeling_loop.lifecycle import run_records

# Environment of the functions in template.yaml (Globals plus each function's own variables).
TEMPLATE_ENV = {
    # Globals and ValidateInputFunction, from template.yaml
    **validate_input_environment(),
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    # PlanReviewFunction
    "VERIFICATION_PRE_ANNOTATION_FUNCTION_ARN": (
        f"arn:aws:lambda:{REGION}:123456789012:function:labeling-loop-VerificationPreAnnotationLabelingFunction"
    ),
    "VERIFICATION_CONSOLIDATION_FUNCTION_ARN": (
        f"arn:aws:lambda:{REGION}:123456789012:function:labeling-loop-VerificationConsolidationLabelingFunction"
    ),
}
ASL = json.loads((REPO / "statemachine" / "labeling_loop.asl.json").read_text(encoding="utf-8"))


def _states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        if "ItemProcessor" in state:
            yield from _states(state["ItemProcessor"]["States"])


def selected_keys(state_name: str) -> set[str]:
    """The keys a Task state's ResultSelector reads from the Lambda's answer ($.Payload.<key>)."""
    state = dict(_states(ASL["States"]))[state_name]
    return {path.removeprefix("$.Payload.") for path in state["ResultSelector"].values()}


@pytest.fixture
def stack(aws: SimpleNamespace) -> SimpleNamespace:
    """moto plus the functions' environment; buckets and table as the stack creates them."""
    for name, value in TEMPLATE_ENV.items():
        aws.env.setenv(name, value)
    assert aws.table == TEMPLATE_ENV["RUN_STATE_TABLE"]
    return aws


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


def handler(name: str) -> ModuleType:
    app = load_handler(name)
    if name == "validate_input":  # it reads the model's project's labels
        FakeCustomLabels().attach(app.rekognition)
    return app


def event(name: str) -> dict[str, Any]:
    return copy.deepcopy(load_event(name))


def claim_of(aws: SimpleNamespace, source_ref: str) -> dict[str, Any] | None:
    found = aws.dynamodb.get_item(TableName=aws.table, Key={"pk": {"S": f"image#{source_ref}"}}).get("Item")
    return None if found is None else {k: next(iter(v.values())) for k, v in found.items()}


CONFIG = load_event("list_images")["config"]
RUN = from_state(CONFIG)
LAYOUT = RUN.layout()


def ref(name: str) -> str:
    return f"s3://{IMAGES_BUCKET}/photos/{name}"


# ValidateInput ------------------------------------------------------------------------------------


def test_validate_input_returns_the_state_payload_and_saves_it(
    stack: SimpleNamespace, context: FakeLambdaContext
) -> None:
    # GIVEN the first state's event: the execution input and the execution's name
    app = handler("validate_input")

    # WHEN the function runs
    payload = app.lambda_handler(event("validate_input"), context)

    # THEN it returns the payload every later state gets (the other fixtures carry exactly this)
    assert payload == CONFIG
    assert payload["runId"].startswith("weekly-2026-05-01t06-00-00z-")
    # AND the run folder starts with the settings, so users can see what the run did
    assert read_json(stack.s3, LAYOUT.config) == payload
    # AND the run is registered, so that whatever ends the execution can clean up after it
    assert run_records.active(stack.dynamodb, stack.table) == [payload["executionArn"]]


def test_validate_input_accepts_an_empty_console_input(
    stack: SimpleNamespace, context: FakeLambdaContext
) -> None:
    # GIVEN the stack's defaults
    # WHEN a console execution starts with `{}`
    # THEN the run is configured from the defaults, its folder named after the execution
    start = {"input": {}, "executionName": "console-1", "executionArn": execution_arn("console-1")}
    payload = handler("validate_input").lambda_handler(start, context)
    assert payload["projectVersionArn"] == MODEL_ARN
    assert payload["reviewJobsKey"] == f"labeling-runs/{payload['runId']}/review/jobs.json"
    assert payload["runId"].startswith("console-1-")


def test_validate_input_rejects_bad_input_before_writing_anything(
    stack: SimpleNamespace, context: FakeLambdaContext
) -> None:
    # GIVEN an input with an out-of-range confidence and images in a foreign bucket
    bad = event("validate_input")
    bad["input"]["minConfidence"] = 150
    # WHEN the function runs
    # THEN it fails with InvalidInput (the name the state machine's Catch matches), naming the field
    with pytest.raises(InvalidInput, match=r"^minConfidence: "):
        handler("validate_input").lambda_handler(bad, context)
    bad["input"]["minConfidence"] = 60
    bad["input"]["images"] = "s3://someone-elses-bucket/photos/"
    with pytest.raises(InvalidInput, match=r"^images: bucket 'someone-elses-bucket'"):
        handler("validate_input").lambda_handler(bad, context)
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=OUTPUT_BUCKET)


# ListImages ---------------------------------------------------------------------------------------


def test_list_images_handler(stack: SimpleNamespace, context: FakeLambdaContext) -> None:
    # GIVEN images under the run's prefix, one GIF, one note
    for name in ("robin-01.jpg", "sparrow 02.png", "wren-03.JPG"):
        put_object(stack.s3, IMAGES_BUCKET, f"photos/{name}", b"x")
    put_object(stack.s3, IMAGES_BUCKET, "photos/anim.gif", b"x")
    put_object(stack.s3, IMAGES_BUCKET, "photos/notes.txt", b"x")

    # WHEN the function runs
    result = handler("list_images").lambda_handler(event("list_images"), context)

    # THEN it returns what "List Images" selects, and the inventory lists the images to infer
    assert selected_keys("List Images") <= set(result)
    assert (result["imagesListed"], result["imagesToInfer"], result["skippedAtListing"]) == (4, 3, 1)
    assert len(read_jsonl(stack.s3, LAYOUT.inventory)) == 3
    # AND the incremental run claimed its images in the stack's table
    assert claim_of(stack, ref("robin-01.jpg"))["runId"] == RUN.runId


# ModelControl -------------------------------------------------------------------------------------


def model_handler() -> tuple[ModuleType, FakeCustomLabels]:
    app = handler("model_control")
    FakeExecutions().attach(app.services.executions)
    return app, FakeCustomLabels().attach(app.services.rekognition)


def test_model_control_acquire_check_release(stack: SimpleNamespace, context: FakeLambdaContext) -> None:
    # GIVEN a stopped model
    app, model = model_handler()

    # WHEN the run acquires it
    acquired = app.lambda_handler(event("model_control"), context)
    # THEN it is started, and the answer has what "Acquire Model" selects
    assert selected_keys("Acquire Model") <= set(acquired)
    assert (acquired["status"], acquired["startedByRun"]) == ("STARTING", True)

    # WHEN the model is running and the run checks (with the model state the ASL carries)
    model.status = "RUNNING"
    check = event("model_control_check")
    check["model"] = {key: acquired[key] for key in selected_keys("Acquire Model")}
    checked = app.lambda_handler(check, context)
    assert selected_keys("Check Model") <= set(checked)
    assert checked["status"] == "RUNNING"

    # WHEN inference is done and the run releases it
    released = app.lambda_handler(event("model_control_release"), context)
    # THEN the model it started is stopped
    assert selected_keys("Release Model") <= set(released)
    assert released == {
        "stopped": True,
        "status": "STOPPING",
        "prunedUsers": 0,
        # no $.model in this event: no model time to count
        "modelSeconds": 0.0,
        "inferenceUnits": 0,
        "startedByRun": False,
    }


def test_model_control_check_fixture_times_out_past_the_deadline(
    stack: SimpleNamespace, context: FakeLambdaContext
) -> None:
    # GIVEN a model still starting
    # WHEN the check runs before / after the run's deadline
    # THEN it keeps waiting, then gives up with ModelStartTimeoutError
    app, model = model_handler()
    model.status = "STARTING"
    check = event("model_control_check")
    # A deadline in the future: still waiting
    assert app.lambda_handler(check, context)["status"] == "STARTING"
    # A deadline in the past: the run gives up
    check["model"]["deadline"] = 0
    with pytest.raises(ModelStartTimeoutError):
        app.lambda_handler(check, context)


def test_model_control_rejects_an_unknown_action(stack: SimpleNamespace, context: FakeLambdaContext) -> None:
    # WHEN the function gets an action the definition never sends
    # THEN it fails loudly
    app, _ = model_handler()
    with pytest.raises(InvalidEvent, match=r"^model_control event: action: 'restart' is not one of "):
        app.lambda_handler({**event("model_control"), "action": "restart"}, context)


def test_model_control_needs_the_run_state_table(stack: SimpleNamespace, context: FakeLambdaContext) -> None:
    # GIVEN a function deployed without RUN_STATE_TABLE
    stack.env.delenv("RUN_STATE_TABLE")
    # THEN it fails at cold start, saying which variable is missing, before it can touch the model
    with pytest.raises(SettingsError, match="environment variable RUN_STATE_TABLE: is not set"):
        model_handler()


def test_model_control_takes_back_a_run_redriven_after_its_cleanup(
    stack: SimpleNamespace, context: FakeLambdaContext
) -> None:
    # GIVEN a run whose execution was stopped and cleaned up (record cleaned up, lease released),
    # then redriven: it is running again, waiting for its model
    app, model = model_handler()
    config = from_state(event("model_control")["config"])
    run_records.register(
        stack.dynamodb, stack.table, execution_arn=config.executionArn, run_id=config.runId,
        config_uri=str(config.layout().config), expires_at=2_000_000_000,
    )  # fmt: skip
    run_records.finish(stack.dynamodb, stack.table, config.executionArn, run_records.CLEANED_UP)
    # WHEN its Check Model runs
    check = event("model_control_check")
    checked = app.lambda_handler(check, context)
    # THEN the run is active again and holds its lease before the model is looked at (the model,
    # found stopped, is started under that lease)
    assert run_records.active(stack.dynamodb, stack.table) == [config.executionArn]
    lease = model_lease.read(stack.dynamodb, stack.table, config.projectVersionArn)
    assert lease.users == frozenset({config.executionArn}) and lease.started_by == config.executionArn
    assert (checked["status"], checked["startedByRun"]) == ("STARTING", True)
    assert len(model.operations("StartProjectVersion")) == 1


# Label Studio ---------------------------------------------------------------------------------------


def test_labelstudio_review_turns_a_throttle_into_the_error_its_tasks_retry(
    stack: SimpleNamespace, context: FakeLambdaContext
) -> None:
    # GIVEN the stack's Label Studio, and Secrets Manager throttling the read of its token
    secret = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:labelstudio-token-AbCdEf"
    stack.env.setenv("LABEL_STUDIO_URL", "https://labelstudio.example.com")
    stack.env.setenv("LABEL_STUDIO_TOKEN_SECRET_ARN", secret)
    app = handler("labelstudio_review")

    def throttled(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        raise ServiceError("ThrottlingException", "Rate exceeded")

    answer_with(app.secretsmanager, throttled)
    config = event("model_control")["config"]
    # WHEN a Label Studio step runs
    # THEN it fails with TransientServiceError, which its Tasks retry (not a run-failing error)
    with pytest.raises(TransientServiceError, match="ThrottlingException"):
        app.lambda_handler({"config": config, "action": "preflight"}, context)


# DetectLabels -------------------------------------------------------------------------------------

DETECTIONS = {
    "photos/robin-01.jpg": [
        {
            "Name": "robin",
            "Confidence": 97.5,
            "Geometry": {"BoundingBox": {"Left": 0.1, "Top": 0.2, "Width": 0.3, "Height": 0.25}},
        }
    ],
    "photos/sparrow 02.png": [
        {
            "Name": "sparrow",
            "Confidence": 71.0,
            "Geometry": {"BoundingBox": {"Left": 0.5, "Top": 0.5, "Width": 0.2, "Height": 0.2}},
        }
    ],
    "photos/wren-03.jpg": [],
}


BATCH_IMAGES = ("robin-01.jpg", "sparrow 02.png", "wren-03.jpg", "broken.jpg")


def put_batch_images(aws: SimpleNamespace, inventory: bool = False) -> None:
    put_object(aws.s3, IMAGES_BUCKET, "photos/robin-01.jpg", jpeg((640, 480), orientation=6))
    put_object(aws.s3, IMAGES_BUCKET, "photos/sparrow 02.png", png((640, 480)))
    put_object(aws.s3, IMAGES_BUCKET, "photos/wren-03.jpg", jpeg((800, 600)))
    put_object(aws.s3, IMAGES_BUCKET, "photos/broken.jpg", b"\xff\xd8\xff garbage")
    if inventory:  # what List Images wrote: the batch of the fixture is its 4 lines
        write_jsonl(aws.s3, LAYOUT.inventory, [{"source-ref": ref(name)} for name in BATCH_IMAGES])


def detect_handler() -> tuple[ModuleType, list[tuple[str, dict[str, Any]]]]:
    app = handler("detect_labels")

    def respond(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        assert operation == "DetectCustomLabels"
        assert params["ProjectVersionArn"] == MODEL_ARN and params["MinConfidence"] == PREDICTION_FLOOR
        return {"CustomLabels": DETECTIONS[params["Image"]["S3Object"]["Name"]]}

    return app, answer_with(app.rekognition, respond)


def test_detect_labels_handler(stack: SimpleNamespace, context: FakeLambdaContext) -> None:
    # GIVEN a batch of three good images and a broken one (the Map item of the fixture)
    put_batch_images(stack, inventory=True)
    app, calls = detect_handler()

    # WHEN the function runs over the batch with the stack's threads
    result = app.lambda_handler(event("detect_labels"), context)

    # THEN it answers what the Map's task selects: the whole batch done in one invocation
    assert selected_keys("Detect Labels In Batch") <= set(result)
    assert {k: result[k] for k in ("batchId", "done", "inferred", "skipped", "finished")} == {
        "batchId": 0,
        "done": 4,
        "inferred": 3,
        "skipped": 1,
        "finished": True,
    }
    # AND the batch's flow state, for a next invocation of the batch (this fake answers before the
    # request is sent, so the limiter saw no attempt: test_flow.py covers it)
    assert result["flow"]["rate"] == 5.0
    # AND it wrote the batch's predictions and skips, named by the batch and where it started
    predictions = {p["source-ref"]: p for p in read_jsonl(stack.s3, LAYOUT.predictions_part("00000-0000000"))}
    assert predictions[ref("robin-01.jpg")]["image_size"] == {"width": 640, "height": 480, "depth": 3}
    assert predictions[ref("robin-01.jpg")]["orientation"] == 6
    skipped = read_jsonl(stack.s3, LAYOUT.skipped_part("inference", "00000-0000000"))
    assert [s["source-ref"] for s in skipped] == [ref("broken.jpg")]
    # AND the broken image was never sent to the model
    assert sorted(p["Image"]["S3Object"]["Name"] for _, p in calls) == sorted(DETECTIONS)


# PlanReview ---------------------------------------------------------------------------------------


def prediction(name: str, labels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "source-ref": ref(name),
        "image_size": {"width": 640, "height": 480, "depth": 3},
        "orientation": 1,
        "labels": labels,
    }


def test_plan_review_handler_plans_ground_truth_jobs(
    stack: SimpleNamespace, context: FakeLambdaContext
) -> None:
    # GIVEN predictions: one sure (auto-accepted at 95), one doubtful, one empty
    box = {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.25}
    write_jsonl(
        stack.s3,
        LAYOUT.predictions_part(0),
        [
            prediction("robin-01.jpg", [{"name": "robin", "confidence": 97.5, "box": box}]),
            prediction("sparrow 02.png", [{"name": "sparrow", "confidence": 71.0, "box": box}]),
            prediction("wren-03.jpg", []),
        ],
    )

    # WHEN the function runs
    result = handler("plan_review").lambda_handler(event("plan_review"), context)

    # THEN the plan is what "Plan Review" selects, with the run's extra labels offered
    assert selected_keys("Plan Review") <= set(result)
    assert result == {
        "taskType": "detection",
        "labels": ["robin", "sparrow", "wren"],
        "imagesToReview": 2,
        "imagesAutoAccepted": 1,
        "imagesAudited": 0,  # the event turns the audit off
        "jobs": 1,
        "wave": 1,
        "jobsKey": CONFIG["reviewJobsKey"],
        "reviewBudget": None,
        "imagesDeferred": 0,
        "auditCappedByBudget": 0,
        "reviewedByPriority": {"uncertainty": 2},
        "backend": "groundtruth",
    }
    assert read_json(stack.s3, LAYOUT.review_plan) == result
    # AND the labeling jobs' item list is where "Run Labeling Jobs" reads it (the plan's jobsKey)
    jobs = read_json(stack.s3, S3Uri(CONFIG["outputBucket"], result["jobsKey"]))
    assert [job["objectCount"] for job in jobs] == [2]
    assert jobs[0]["workteamArn"] == WORKTEAM_ARN
    assert jobs[0]["jobName"] == f"lab-{RUN.runId}-det-000"


# RunCleanup ---------------------------------------------------------------------------------------


def test_run_cleanup_handler(stack: SimpleNamespace, context: FakeLambdaContext) -> None:
    # GIVEN a run that started the model, claimed an image, then timed out
    app = handler("run_cleanup")
    model = FakeCustomLabels(status="RUNNING").attach(app.services.rekognition)
    FakeExecutions().attach(app.services.executions)
    FakeLabelingJobs().attach(app.sagemaker)
    model_lease.acquire(stack.dynamodb, stack.table, MODEL_ARN, RUN.executionArn)
    model_lease.record_start(stack.dynamodb, stack.table, MODEL_ARN, RUN.executionArn)
    claims.claim(stack.dynamodb, stack.table, ref("robin-01.jpg"), RUN.runId, 0, 2**40)
    write_jsonl(
        stack.s3,
        LAYOUT.inventory,
        [{"source-ref": ref("robin-01.jpg"), "key": "photos/robin-01.jpg", "size": 1, "etag": "e"}],
    )

    # WHEN the failure path runs with the caught error
    result = app.lambda_handler(event("run_cleanup"), context)

    # THEN the model is stopped, the claim released, and the Fail state gets a legal error name
    assert selected_keys("Clean Up After Failure") <= set(result)
    assert result["modelStopped"] is True
    assert (result["error"], result["cause"]) == (
        "StatesTimeoutError",
        "States.Timeout: Task timed out after 900.00 seconds",
    )
    assert model.status == "STOPPING"
    assert claim_of(stack, ref("robin-01.jpg")) is None


# BuildManifest ------------------------------------------------------------------------------------


def test_build_manifest_handler(stack: SimpleNamespace, context: FakeLambdaContext) -> None:
    # GIVEN a detection run: robin auto-accepted, sparrow and wren reviewed, broken skipped
    names = ["robin-01.jpg", "sparrow 02.png", "wren-03.jpg", "broken.jpg"]
    for name in names:
        claims.claim(stack.dynamodb, stack.table, ref(name), RUN.runId, 0, 2**40)
    write_jsonl(
        stack.s3,
        LAYOUT.inventory,
        [{"source-ref": ref(n), "key": f"photos/{n}", "size": 1, "etag": "e"} for n in names],
    )
    size = {"width": 640, "height": 480, "depth": 3}

    def reviewed(name: str, boxes: list[dict[str, Any]], reviewer: str, human: bool) -> dict[str, Any]:
        return {
            "source-ref": ref(name),
            "taskType": "detection",
            "image_size": size,
            "boxes": boxes,
            "labels": [],
            "removed": [],
            "reviewer": reviewer,
            "humanReviewed": human,
        }

    robin = {"label": "robin", "left": 64, "top": 96, "width": 192, "height": 120}
    write_jsonl(
        stack.s3,
        LAYOUT.auto_accepted,
        [reviewed("robin-01.jpg", [{**robin, "status": "kept"}], "auto-accept", False)],
    )
    write_jsonl(
        stack.s3,
        LAYOUT.reviewed,
        [
            reviewed(
                "sparrow 02.png",
                [{**robin, "label": "sparrow", "status": "adjusted"}],
                "groundtruth:lab-x-det-000",
                True,
            ),
            reviewed(
                "wren-03.jpg",
                [{**robin, "label": "wren", "status": "added"}],
                "groundtruth:lab-x-det-000",
                True,
            ),
        ],
    )
    write_jsonl(
        stack.s3,
        LAYOUT.skipped_part("inference", 0),
        [{"source-ref": ref("broken.jpg"), "stage": "inference", "reason": "corrupt-image", "detail": "x"}],
    )

    # AND the audit gate let the auto-accepted image ship (what Check Audit records)
    write_json(stack.s3, LAYOUT.gate, {"decision": "ship", "reason": "the audit vouched for it"})

    # WHEN the function runs with the listing counts and the review plan the state machine carried
    result = handler("build_manifest").lambda_handler(event("build_manifest"), context)

    # THEN it answers what "Build Manifest" selects (the execution's output)
    assert selected_keys("Build Manifest") <= set(result)
    assert result["manifest"] == f"{CONFIG['runPrefix']}output.manifest"
    counts = result["counts"]
    assert (counts["imagesListed"], counts["imagesInManifest"], counts["imagesSkipped"]) == (4, 3, 1)
    assert counts["imagesListed"] == counts["imagesInManifest"] + counts["imagesSkipped"]
    assert len(read_jsonl(stack.s3, LAYOUT.manifest)) == 3
    # AND the incremental run's ledger says which images are done
    assert claim_of(stack, ref("robin-01.jpg"))["state"] == "labeled"
    assert claim_of(stack, ref("broken.jpg")) is None


# The handlers chained as the state machine chains them ------------------------------------------


def test_a_whole_run_through_the_handlers(stack: SimpleNamespace, context: FakeLambdaContext) -> None:
    # GIVEN images in the bucket and a stopped model
    put_batch_images(stack)
    state: dict[str, Any] = {}

    # WHEN each state's function gets what the definition passes it
    state["config"] = handler("validate_input").lambda_handler(event("validate_input"), context)
    state["listing"] = handler("list_images").lambda_handler({"config": state["config"]}, context)
    model_app, model = model_handler()
    images = state["listing"]["imagesToInfer"]
    state["model"] = model_app.lambda_handler(
        {"action": "acquire", "config": state["config"], "imagesToInfer": images}, context
    )
    model.status = "RUNNING"
    state["model"] = model_app.lambda_handler(
        {"action": "check", "config": state["config"], "model": state["model"], "imagesToInfer": images},
        context,
    )
    detect_app, _ = detect_handler()
    for batch in state["model"]["batches"]:  # the Map's items, each child looping until finished
        progress: dict[str, Any] = {"done": 0}
        while not progress.get("finished"):
            progress = detect_app.lambda_handler(
                {"batch": batch, "config": state["config"], "progress": progress}, context
            )
    released = model_app.lambda_handler({"action": "release", "config": state["config"]}, context)
    plan = handler("plan_review").lambda_handler(
        {"config": state["config"], "listing": state["listing"]}, context
    )
    # (people review: every task answered by keeping the predictions)
    tasks = read_jsonl(stack.s3, LAYOUT.review_tasks)
    write_jsonl(
        stack.s3,
        LAYOUT.reviewed,
        [
            {
                "source-ref": t["source-ref"],
                "taskType": t["taskType"],
                "image_size": t["image_size"],
                "boxes": [{"label": p["label"], **p["box"], "status": "kept"} for p in t["predictions"]],
                "labels": [],
                "removed": [],
                "reviewer": "groundtruth:job",
                "humanReviewed": True,
            }
            for t in tasks
        ],
    )
    state["plan"] = {key: plan[key] for key in selected_keys("Plan Review")}
    state["gate"] = handler("plan_review").lambda_handler(
        {"action": "check-audit", "config": state["config"], "plan": state["plan"]}, context
    )
    assert set(state["gate"]) == selected_keys("Check Audit")
    result = handler("build_manifest").lambda_handler(
        {"config": state["config"], "listing": state["listing"], "plan": state["plan"]}, context
    )

    # THEN the model was stopped after inference, and every listed image is accounted for
    assert released["stopped"] is True
    # (the one confident image is the audit: the stack audits at least 60 candidates, so all of them)
    assert state["gate"]["decision"] == "nothing-to-ship"
    assert (plan["imagesAutoAccepted"], plan["imagesToReview"], plan["imagesAudited"]) == (0, 3, 1)
    counts = result["counts"]
    assert counts["imagesListed"] == 4
    assert (counts["imagesInManifest"], counts["imagesSkipped"]) == (3, 1)
    assert not [w for w in result["warnings"] if "imagesListed" in w]
