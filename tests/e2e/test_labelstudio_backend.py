"""The Label Studio review backend against a real Label Studio server: create the review from
review/tasks.jsonl in (moto) S3, let emulated reviewers answer through the REST API, check progress,
collect the reviewed records; the Lambda handler end to end; failures that must be quick and clear."""

from __future__ import annotations

import importlib.util
import io
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import labelstudio_fixtures  # tests/e2e is on sys.path (pytest rootdir-relative import)
import pytest
import requests
from deployed_stack import execution_arn, function_environment, run_state
from labeling_loop.kernel.errors import LabelStudioUnavailableError, ReviewBackendError
from labeling_loop.kernel.jsonl import read_json, read_jsonl
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_input import run_id_for
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.labelstudio import project as ls_project
from labeling_loop.review.labelstudio.client import ConnectionSettings, LabelStudioClient
from moto import mock_aws
from PIL import Image

from localcloud.services.labelstudio.reviewers import annotate_project
from localcloud.services.labelstudio.server import LabelStudioServer

pytestmark = [pytest.mark.e2e, pytest.mark.labelstudio]

# One server for the session, shared with the other Label Studio test module (see labelstudio_fixtures).
labelstudio = labelstudio_fixtures.labelstudio
moto_s3_endpoint = labelstudio_fixtures.moto_s3_endpoint

ROOT = Path(__file__).resolve().parents[2]

REGION = "us-east-1"
IMAGES_BUCKET = "review-images"
OUTPUT_BUCKET = "review-output"
STORAGE = {"region": REGION, "endpoint_url": None}  # Label Studio's S3_ENDPOINT points at moto


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "labeling-loop-test",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=IMAGES_BUCKET)
        client.create_bucket(Bucket=OUTPUT_BUCKET)
        yield client


def _jpeg(width: int, height: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (seed * 40 % 255, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


@dataclass
class Scenario:
    layout: RunLayout
    truth: dict[str, dict[str, Any]]
    images: dict[str, bytes]
    run_id: str


def _detection_scenario(s3: Any, run_id: str, count: int = 8) -> Scenario:
    """Images with three true boxes each. The model: the first box exact (kept), the second exact
    on even images and 6 px off on odd ones (adjusted), the third only on every third image (else
    added), a false box on even images (removed), and nothing at all on every fourth image."""
    layout = RunLayout.for_run(S3Uri(OUTPUT_BUCKET, "runs/"), run_id)
    truth: dict[str, dict[str, Any]] = {}
    images: dict[str, bytes] = {}
    lines = []
    for index in range(count):
        width, height = (640, 480) if index % 2 else (333, 500)
        key = f"photos/{run_id}/img {index:02d}.jpg"  # a space: keys are not URL-encoded in refs
        ref = f"s3://{IMAGES_BUCKET}/{key}"
        images[ref] = _jpeg(width, height, index)
        s3.put_object(Bucket=IMAGES_BUCKET, Key=key, Body=images[ref], ContentType="image/jpeg")
        boxes = [
            {"label": "cat", "left": 10 + index, "top": 20, "width": 100, "height": 80},
            {"label": "dog", "left": 150, "top": 200, "width": 60, "height": 90 + index},
            {"label": "cat", "left": 20, "top": 300, "width": 40, "height": 40},
        ]
        truth[ref] = {"width": width, "height": height, "boxes": boxes, "labels": []}
        predicted = []
        if index % 4 != 3:
            predicted.append(dict(boxes[0]))
            predicted.append(dict(boxes[1], left=150 + (6 if index % 2 else 0)))
            if index % 3 == 0:
                predicted.append(dict(boxes[2]))
            if index % 2 == 0:
                predicted.append({"label": "cat", "left": 250, "top": 10, "width": 40, "height": 40})
        predictions = [
            {
                "label": box["label"],
                "confidence": 80.0,
                "box": {k: box[k] for k in ("left", "top", "width", "height")},
            }
            for box in predicted
        ]
        lines.append(
            {
                "source-ref": ref,
                "taskType": "detection",
                "image_size": {"width": width, "height": height, "depth": 3},
                "predictions": predictions,
            }
        )
    s3.put_object(
        Bucket=OUTPUT_BUCKET,
        Key=layout.review_tasks.key,
        Body="".join(json.dumps(line) + "\n" for line in lines).encode(),
    )
    _plan_written(s3, layout, "detection", ["cat", "dog"])
    return Scenario(layout, truth, images, run_id)


def _plan_written(s3: Any, layout: RunLayout, task_type: str, labels: list[str]) -> None:
    """review/plan.json as Plan Review writes it: collect checks answers against its labels."""
    plan = {"taskType": task_type, "labels": labels, "backend": "labelstudio"}
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=layout.review_plan.key, Body=json.dumps(plan).encode())


def _create(s3: Any, ls: LabelStudioClient, scenario: Scenario, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "run_id": scenario.run_id,
        "execution_arn": execution_arn(scenario.run_id),
        "task_type": "detection",
        "labels": ["cat", "dog"],
        "images_bucket": IMAGES_BUCKET,
        "images_prefix": f"photos/{scenario.run_id}/",
        "s3_storage": STORAGE,
        "title": ls_project.review_title(scenario.run_id),
        **overrides,
    }
    now = arguments.pop("now", None)
    return ls_project.create_review(s3, ls, scenario.layout, ls_project.ProjectSettings(**arguments), now=now)


def _sorted_boxes(boxes: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((b["label"], b["left"], b["top"], b["width"], b["height"]) for b in boxes)


def test_detection_review_round_trip(s3: Any, labelstudio: LabelStudioServer) -> None:
    # GIVEN a run's review tasks in S3 and a client holding a personal access token
    scenario = _detection_scenario(s3, "run-det-1")
    ls = LabelStudioClient(labelstudio.url, labelstudio.token)
    assert ls.token_kind == "personal"

    # WHEN the review is created, and the step is retried after losing its state file
    state = _create(s3, ls, scenario)
    assert read_json(s3, scenario.layout.labelstudio_state) == state
    assert _create(s3, ls, scenario) == state
    s3.delete_object(Bucket=OUTPUT_BUCKET, Key=scenario.layout.labelstudio_state.key)
    retried = _create(s3, ls, scenario)

    # THEN one project holds one task per image, with one storage and the model's boxes
    assert retried["projectId"] == state["projectId"]
    assert state["taskCount"] == len(scenario.truth)
    assert state["url"] == f"{labelstudio.url}/projects/{state['projectId']}/data"
    titled = [
        p
        for p in ls.get("/api/projects/", {"title": ls_project.review_title(scenario.run_id)})["results"]
        if p["title"] == ls_project.review_title(scenario.run_id)
    ]
    assert len(titled) == 1
    assert titled[0]["task_number"] == len(scenario.truth)
    assert len(ls.get("/api/storages/s3/", {"project": state["projectId"]})) == 1

    # AND Label Studio resolves a task's s3:// image into a presigned URL that serves its bytes
    tasks = ls.get("/api/tasks/", {"project": state["projectId"], "fields": "all"})["tasks"]
    task = ls.get(f"/api/tasks/{tasks[0]['id']}/")
    assert task["data"]["image"].startswith(f"{labelstudio.url}/tasks/{task['id']}/resolve/")
    redirect = requests.get(
        task["data"]["image"],
        headers={"Authorization": ls._authorization()},
        allow_redirects=False,
        timeout=10,
    )
    assert redirect.status_code in (302, 303), redirect.text[:300]
    presigned = redirect.headers["Location"]
    assert "X-Amz-Signature=" in presigned and "X-Amz-Expires=3600" in presigned
    image = requests.get(presigned, timeout=10)
    assert image.status_code == 200
    raw = ls.get(f"/api/tasks/{task['id']}/", {"resolve_uri": "false"})["data"]
    assert raw["image"] == raw["source_ref"]  # stored as the s3:// reference, resolved per view
    assert image.content == scenario.images[raw["source_ref"]]

    # WHEN careful reviewers answer all but some tasks
    stats = annotate_project(
        ls, state["projectId"], scenario.truth, accuracy=1.0, seed=3, unannotated_fraction=0.3
    )
    assert stats.unannotated >= 1 and stats.annotated >= 1

    # THEN progress counts the answers; the review is not done, until the deadline passes
    created = datetime.fromisoformat(state["createdAt"].replace("Z", "+00:00"))
    progress = ls_project.check_review(ls, state, deadline_hours=72, now=created + timedelta(hours=1))
    assert progress == {
        "projectId": state["projectId"],
        "reachable": True,
        "total": len(scenario.truth),
        "annotated": stats.annotated,
        "answered": stats.annotated,
        "allAnswered": False,
        "deadlinePassed": False,
        "done": False,
    }
    late = ls_project.check_review(ls, state, deadline_hours=72, now=created + timedelta(hours=72))
    assert late["deadlinePassed"] is True and late["done"] is True

    # WHEN the answers are collected
    summary = ls_project.collect_review(s3, ls, scenario.layout, state)

    # THEN each answered image has a reviewed record equal to the truth, statuses as reviewers acted
    records = list(read_jsonl(s3, scenario.layout.reviewed))
    skipped = list(read_jsonl(s3, scenario.layout.skipped_part("review", "labelstudio")))
    assert summary["reviewed"] == len(records) == stats.annotated
    assert summary["skipped"] == len(skipped) == stats.unannotated
    assert sorted(s["source-ref"] for s in skipped) == sorted(stats.unannotated_refs)
    assert all(s["stage"] == "review" and s["reason"] == "not-reviewed" for s in skipped)
    for record in records:
        truth = scenario.truth[record["source-ref"]]
        assert _sorted_boxes(record["boxes"]) == _sorted_boxes(truth["boxes"])
        assert record["image_size"] == {"width": truth["width"], "height": truth["height"], "depth": 3}
        assert record["reviewer"] == f"labelstudio:{state['projectId']}"
        assert record["humanReviewed"] is True and record["labels"] == []
    assert summary["counts"] == {
        "kept": stats.kept,
        "adjusted": stats.adjusted,
        "added": stats.added,
        "removed": stats.removed,
    }
    assert min(stats.kept, stats.adjusted, stats.added, stats.removed) >= 1  # every status exercised


def test_classification_review_round_trip(s3: Any, labelstudio: LabelStudioServer) -> None:
    # GIVEN label-verification tasks and a client holding the legacy token
    run_id = "run-cls-1"
    layout = RunLayout.for_run(S3Uri(OUTPUT_BUCKET, "runs/"), run_id)
    predicted = {"a.jpg": ["indoor", "cat"], "b.jpg": [], "c.jpg": ["outdoor"]}
    true_labels = {"a.jpg": ["cat", "sofa"], "b.jpg": ["outdoor"], "c.jpg": ["outdoor"]}
    truth = {}
    lines = []
    for name, labels in predicted.items():
        key = f"cls/{name}"
        s3.put_object(Bucket=IMAGES_BUCKET, Key=key, Body=_jpeg(200, 100, 1))
        ref = f"s3://{IMAGES_BUCKET}/{key}"
        truth[ref] = {"width": 200, "height": 100, "boxes": [], "labels": true_labels[name]}
        lines.append(
            json.dumps(
                {
                    "source-ref": ref,
                    "taskType": "classification",
                    "image_size": {"width": 200, "height": 100, "depth": 3},
                    "predictions": [{"label": label, "confidence": 80.0} for label in labels],
                }
            )
        )
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=layout.review_tasks.key, Body="\n".join(lines).encode())
    _plan_written(s3, layout, "classification", ["indoor", "outdoor", "cat", "sofa"])
    ls = LabelStudioClient(labelstudio.url, labelstudio.legacy_token)
    assert ls.token_kind == "legacy"

    # WHEN the review is created, answered and collected
    state = ls_project.create_review(
        s3,
        ls,
        layout,
        ls_project.ProjectSettings(
            run_id=run_id,
            execution_arn=execution_arn(run_id),
            task_type="classification",
            labels=["indoor", "outdoor", "cat", "sofa"],
            images_bucket=IMAGES_BUCKET,
            images_prefix="cls/",
            s3_storage=STORAGE,
            title=ls_project.review_title(run_id),
        ),
    )
    annotate_project(ls, state["projectId"], truth, accuracy=1.0, seed=1)
    progress = ls_project.check_review(ls, state, deadline_hours=1, now=datetime.now(UTC))
    assert progress["done"] and progress["allAnswered"] and not progress["deadlinePassed"]
    ls_project.collect_review(s3, ls, layout, state)

    # THEN labels carry kept/added, and rejected predictions are listed as removed
    records = {r["source-ref"]: r for r in read_jsonl(s3, layout.reviewed)}
    a = records[f"s3://{IMAGES_BUCKET}/cls/a.jpg"]
    assert sorted((x["label"], x["status"]) for x in a["labels"]) == [("cat", "kept"), ("sofa", "added")]
    assert a["removed"] == [{"label": "indoor"}] and a["boxes"] == []
    b = records[f"s3://{IMAGES_BUCKET}/cls/b.jpg"]
    assert b["labels"] == [{"label": "outdoor", "status": "added"}]
    c = records[f"s3://{IMAGES_BUCKET}/cls/c.jpg"]
    assert c["labels"] == [{"label": "outdoor", "status": "kept"}] and c["removed"] == []


def _load_handler() -> ModuleType:
    path = ROOT / "functions" / "labelstudio_review" / "app.py"
    spec = importlib.util.spec_from_file_location("labelstudio_review_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeContext:
    function_name: str = "label-studio-review"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:111122223333:function:label-studio-review"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"


def test_lambda_handler_create_check_collect(
    s3: Any, labelstudio: LabelStudioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the token in Secrets Manager (JSON form) and a run state as the state machine passes it
    name = "run-handler-1"
    scenario = _detection_scenario(s3, run_id_for(name, execution_arn(name)), count=3)
    secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="label-studio-token", SecretString=json.dumps({"token": labelstudio.token})
    )["ARN"]
    parameters = {
        "ImagesBucketName": IMAGES_BUCKET,
        "OutputBucketName": OUTPUT_BUCKET,
        "OutputPrefix": "runs",
        "ReviewBackend": "labelstudio",
        "LabelStudioUrl": labelstudio.url,
        "LabelStudioHttpHost": "127.0.0.1",  # the local server speaks plain http on loopback
        "LabelStudioTokenSecretArn": secret_arn,
        "ProjectVersionArn": f"arn:aws:rekognition:{REGION}:123456789012:project/pets/version/v1/1",
    }
    # AND the function as the stack configures it (where Label Studio is, which secret)
    for variable, value in function_environment("LabelStudioReviewFunction", parameters).items():
        monkeypatch.setenv(variable, value)
    handler = _load_handler()
    config = run_state(
        {"images": f"s3://{IMAGES_BUCKET}/photos/{scenario.run_id}/", "reviewDeadlineHours": 24},
        parameters,
        execution_name=name,
    )
    assert config["runPrefix"] == str(scenario.layout.root)
    plan = {"taskType": "detection", "labels": ["cat", "dog"], "imagesToReview": 3}

    # WHEN the state machine creates, polls and collects
    created = handler.lambda_handler({"action": "create", "config": config, "plan": plan}, FakeContext())
    first = handler.lambda_handler({"action": "check", "config": config, "plan": plan}, FakeContext())
    annotate_project(
        LabelStudioClient(labelstudio.url, labelstudio.token),
        created["projectId"],
        scenario.truth,
    )
    second = handler.lambda_handler({"action": "check", "config": config, "plan": plan}, FakeContext())
    collected = handler.lambda_handler({"action": "collect", "config": config, "plan": plan}, FakeContext())

    # THEN each answer is small JSON the state machine can select from
    assert set(created) == {"projectId", "taskCount", "createdAt", "url"} and created["taskCount"] == 3
    assert first["done"] is False and first["total"] == 3 and first["annotated"] == 0
    assert second["done"] is True and second["allAnswered"] is True
    assert collected["reviewed"] == 3 and collected["skipped"] == 0
    assert len(json.dumps(collected)) < 2048

    # AND a passed deadline ends the poll loop even with tasks unanswered: a project made long ago
    state_key = scenario.layout.labelstudio_state.key
    old = {**created, "createdAt": "2020-01-01T00:00:00Z"}
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=state_key, Body=json.dumps(old).encode())
    late = handler.lambda_handler({"action": "check", "config": config, "plan": plan}, FakeContext())
    assert late["done"] and late["deadlinePassed"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on exit: nothing listens there


def test_bad_tokens_and_unreachable_servers_fail_fast(labelstudio: LabelStudioServer) -> None:
    # GIVEN clients whose waits between attempts are recorded instead of slept
    slept: list[float] = []
    cases = {
        "legacy": LabelStudioClient(labelstudio.url, "0" * 40, ConnectionSettings(sleep=slept.append)),
        # a well-formed JWT whose signature Label Studio did not make
        "personal": LabelStudioClient(
            labelstudio.url, labelstudio.token[:-4] + "AAAA", ConnectionSettings(sleep=slept.append)
        ),
    }
    for kind, client in cases.items():
        assert client.token_kind == kind
        # WHEN the token is refused
        with pytest.raises(ReviewBackendError, match=r"HTTP 401") as error:
            client.get("/api/projects/")
        # THEN the error names the server, and nothing was retried after waiting
        assert labelstudio.url in str(error.value)
    assert slept == []

    # WHEN nothing listens at the URL
    url = f"http://127.0.0.1:{_closed_port()}"
    unreachable = LabelStudioClient(
        url, "0" * 40, ConnectionSettings(backoff_seconds=0.1, sleep=slept.append)
    )
    with pytest.raises(LabelStudioUnavailableError, match="unreachable") as error:
        unreachable.get("/api/projects/")
    # THEN it gives up after its few retries, having waited 0.1 s then 0.2 s, naming the URL
    assert url in str(error.value)
    assert slept == [0.1, 0.2]
