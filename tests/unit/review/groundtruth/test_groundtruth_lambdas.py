"""The label-verification custom task's Lambdas: the layer cores and the thin handlers, with events
shaped like Ground Truth's (tests/events/gt_verification_*.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.review.groundtruth.task_lambdas import (
    consolidate,
    consolidate_object,
    pre_annotate,
    worker_votes,
)
from lambda_harness import EVENTS, FakeLambdaContext, load_event, load_handler

WORK_BUCKET = "gt-work-bucket"
PAYLOAD_KEY = "consolidation-request/iteration-1/0/2024-01-01_00:00:00.json"


@pytest.fixture
def s3(moto_s3: Any) -> Any:
    moto_s3.create_bucket(Bucket=WORK_BUCKET)
    moto_s3.put_object(
        Bucket=WORK_BUCKET,
        Key=PAYLOAD_KEY,
        Body=(EVENTS / "gt_verification_consolidation_payload.json").read_bytes(),
    )
    # Object 3's answer is stored in S3 (annotationData.s3Uri) instead of inline.
    moto_s3.put_object(
        Bucket=WORK_BUCKET,
        Key="worker-response/d-answer.json",
        Body=json.dumps({"labels": {"indoor": True, "outdoor": False}, "predicted": '["outdoor"]'}),
    )
    return moto_s3


EXPECTED_CONSOLIDATION = [
    {
        # 3 workers, outdoor predicted: outdoor 2-1 stays, night 2-1 is added, indoor 0-3 stays out.
        "datasetObjectId": "0",
        "consolidatedAnnotation": {
            "content": {
                "reviewed-labels": {
                    "labels": ["night", "outdoor"],
                    "rejected": [],
                    "added": ["night"],
                    "workers": 3,
                }
            }
        },
    },
    {
        # 2 workers, nothing predicted (no `predicted` in the answers): indoor 1-1 is a tie and
        # keeps its predicted state, off. Answers in the data-contracts {"on": bool} form.
        "datasetObjectId": "1",
        "consolidatedAnnotation": {
            "content": {"reviewed-labels": {"labels": [], "rejected": [], "added": [], "workers": 2}}
        },
    },
    # Object 2 had no annotations: left out.
    {
        "datasetObjectId": "3",
        "consolidatedAnnotation": {
            "content": {
                "reviewed-labels": {
                    "labels": ["indoor"],
                    "rejected": ["outdoor"],
                    "added": ["indoor"],
                    "workers": 1,
                }
            }
        },
    },
]


# --- pre-annotation ----------------------------------------------------------------------------------


def test_pre_annotation_returns_task_input_from_the_manifest_line() -> None:
    result = pre_annotate(load_event("gt_verification_pre_annotation.json"))

    assert result == {
        "taskInput": {
            "taskObject": "s3://images-bucket/photos/a.jpg",
            "predicted": ["outdoor"],
            "labels": ["indoor", "outdoor"],
        },
        "isHumanAnnotationRequired": True,
    }


def test_pre_annotation_adds_a_predicted_label_missing_from_the_label_set() -> None:
    event = load_event("gt_verification_pre_annotation.json")
    event["dataObject"]["model-predictions"]["labels"].append({"label": "night", "confidence": 0.7})

    task_input = pre_annotate(event)["taskInput"]

    assert task_input["predicted"] == ["outdoor", "night"]
    assert task_input["labels"] == ["indoor", "outdoor", "night"]


def test_pre_annotation_without_predictions_still_asks_people() -> None:
    event = {"version": "2018-10-16", "labelingJobArn": "arn", "dataObject": {"source-ref": "s3://b/k.jpg"}}

    assert pre_annotate(event) == {
        "taskInput": {"taskObject": "s3://b/k.jpg", "predicted": [], "labels": []},
        "isHumanAnnotationRequired": True,
    }


def test_pre_annotation_needs_a_source_ref() -> None:
    with pytest.raises(InvalidInput, match="source-ref"):
        pre_annotate({"version": "2018-10-16", "dataObject": {"source": "some text"}})


# --- consolidation -----------------------------------------------------------------------------------


def test_consolidation_majority_votes_per_label_and_omits_unanswered_objects(s3: Any) -> None:
    assert consolidate(load_event("gt_verification_consolidation.json"), s3) == EXPECTED_CONSOLIDATION


def test_a_tie_keeps_the_predicted_state() -> None:
    answers = [
        {"labels": {"outdoor": True, "indoor": True}},
        {"labels": {"outdoor": False, "indoor": False}},
    ]

    result = consolidate_object(answers, predicted=["outdoor"])

    assert result == {"labels": ["outdoor"], "rejected": [], "added": [], "workers": 2}


def test_a_majority_rejects_a_prediction() -> None:
    answers = [{"labels": {"outdoor": False}}, {"labels": {"outdoor": False}}, {"labels": {"outdoor": True}}]

    assert consolidate_object(answers, predicted=["outdoor"]) == {
        "labels": [],
        "rejected": ["outdoor"],
        "added": [],
        "workers": 3,
    }


@pytest.mark.parametrize(
    "answer",
    [
        {"labels": {"outdoor": True, "indoor": False}, "predicted": '["outdoor"]'},
        {"labels": {"outdoor": {"on": True}, "indoor": {"on": False}}},
        {"outdoor": {"on": True}, "indoor": {"on": False}},
    ],
)
def test_worker_answer_shapes(answer: dict[str, Any]) -> None:
    assert worker_votes(answer) == {"outdoor": True, "indoor": False}


def test_consolidation_uses_the_event_label_attribute(s3: Any) -> None:
    event = load_event("gt_verification_consolidation.json")
    event["labelAttributeName"] = "other-attribute"

    (first, *_) = consolidate(event, s3)

    assert list(first["consolidatedAnnotation"]["content"]) == ["other-attribute"]


# --- handlers ----------------------------------------------------------------------------------------


def test_pre_annotation_handler(fake_aws_env: pytest.MonkeyPatch) -> None:
    handler = load_handler("verification_pre_annotation")

    result = handler.lambda_handler(load_event("gt_verification_pre_annotation.json"), FakeLambdaContext())

    assert result["taskInput"]["taskObject"] == "s3://images-bucket/photos/a.jpg"
    assert result["isHumanAnnotationRequired"] is True
    json.dumps(result)  # what Lambda returns must serialise


def test_consolidation_handler_reads_the_request_with_its_module_client(s3: Any) -> None:
    handler = load_handler("verification_consolidation")  # client made at import, inside the mock
    assert handler.s3.meta.config.retries["mode"] == "standard"

    result = handler.lambda_handler(load_event("gt_verification_consolidation.json"), FakeLambdaContext())

    assert result == EXPECTED_CONSOLIDATION
    json.dumps(result)


def test_a_malformed_answer_counts_as_no_answer(s3: Any) -> None:
    request = [
        {
            "datasetObjectId": "7",
            "dataObject": {"s3Uri": "s3://images-bucket/photos/x.jpg"},
            "annotations": [{"workerId": "w1", "annotationData": {"content": "{not json"}}],
        }
    ]
    s3.put_object(Bucket=WORK_BUCKET, Key="bad-request.json", Body=json.dumps(request))
    event = load_event("gt_verification_consolidation.json")
    event["payload"]["s3Uri"] = f"s3://{WORK_BUCKET}/bad-request.json"

    assert consolidate(event, s3) == []
