"""Collecting Ground Truth output into reviewed records and skip records. S3 is moto; SageMaker is
a real client under botocore's Stubber, so DescribeLabelingJob responses are checked against the
service model (moto does not implement labeling jobs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from labeling_loop.kernel.errors import ReviewBackendError
from labeling_loop.kernel.jsonl import read_json, write_json
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.groundtruth import collect as collect_module
from labeling_loop.review.groundtruth.collect import collect as collect_review
from labeling_loop.review.groundtruth.collect import diff_boxes
from labeling_loop.review.groundtruth.jobs import JobSettings, plan_jobs

BUCKET = "out-bucket"
ACCOUNT = "111122223333"
WORKTEAM = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:workteam/private-crowd/reviewers"
SIZE = {"width": 640, "height": 480, "depth": 3}


@pytest.fixture
def aws(moto_s3: Any) -> tuple[Any, Any]:
    moto_s3.create_bucket(Bucket=BUCKET)
    # Created inside mock_aws but answered by the Stubber, which runs first.
    return moto_s3, boto3.client("sagemaker", region_name="us-east-1")


@pytest.fixture
def layout() -> RunLayout:
    return RunLayout.for_run(S3Uri(BUCKET, "runs"), "run1")


def box(label: str, left: int, top: int, width: int, height: int, confidence: float = 90.0) -> dict[str, Any]:
    return {
        "label": label,
        "confidence": confidence,
        "box": {"left": left, "top": top, "width": width, "height": height},
    }


def det_task(name: str, predictions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "source-ref": f"s3://images/{name}.jpg",
        "taskType": "detection",
        "image_size": SIZE,
        "predictions": predictions,
    }


def cls_task(name: str, labels: list[str]) -> dict[str, Any]:
    return {
        "source-ref": f"s3://images/{name}.jpg",
        "taskType": "classification",
        "image_size": SIZE,
        "predictions": [{"label": label, "confidence": 70.0} for label in labels],
    }


def plan(
    s3: Any, layout: RunLayout, tasks: list[dict[str, Any]], task_type: str, labels: list[str], per_job: int
) -> list[dict[str, Any]]:
    # What Plan Review writes next to the jobs: the run's label set, which collect checks answers
    # with (a test planning jobs of both task types offers both label sets).
    try:
        offered = read_json(s3, layout.review_plan)["labels"]
    except s3.exceptions.NoSuchKey:
        offered = []
    write_json(s3, layout.review_plan, {"taskType": task_type, "labels": sorted({*offered, *labels})})
    settings = JobSettings(
        task_type=task_type,  # type: ignore[arg-type]
        labels=labels,
        run_id="run1",
        job_name_prefix="lab",
        max_images_per_job=per_job,
        workteam_arn=WORKTEAM,
        region="us-east-1",
        verification_pre_lambda_arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:pre",
        verification_consolidation_lambda_arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:acs",
        workers_per_object=1,
        task_time_limit_s=600,
        task_availability_s=864000,
        max_concurrent_tasks=1000,
    )
    return plan_jobs(s3, layout, tasks, settings, now=datetime(2024, 1, 2, tzinfo=UTC))


def describe_response(
    job: dict[str, Any], status: str, *, output_uri: str | None = None, failure: str | None = None
) -> dict[str, Any]:
    """A DescribeLabelingJob response with every member the service model requires."""
    now = datetime(2024, 1, 3, tzinfo=UTC)
    response: dict[str, Any] = {
        "LabelingJobStatus": status,
        "LabelCounters": {
            "TotalLabeled": 0,
            "HumanLabeled": 0,
            "MachineLabeled": 0,
            "FailedNonRetryableError": 0,
            "Unlabeled": 0,
        },
        "CreationTime": now,
        "LastModifiedTime": now,
        "JobReferenceCode": "abc123",
        "LabelingJobName": job["jobName"],
        "LabelingJobArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:labeling-job/{job['jobName']}",
        "LabelAttributeName": job["labelAttributeName"],
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": job["inputManifestUri"]}}},
        "OutputConfig": {"S3OutputPath": job["outputUri"]},
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/GroundTruth",
        "HumanTaskConfig": {
            "WorkteamArn": WORKTEAM,
            "UiConfig": {"UiTemplateS3Uri": job["uiTemplateUri"]},
            "TaskTitle": job["taskTitle"],
            "TaskDescription": job["taskDescription"],
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 600,
        },
    }
    if output_uri:
        response["LabelingJobOutput"] = {"OutputDatasetS3Uri": output_uri}
    if failure:
        response["FailureReason"] = failure
    return response


def input_lines(s3: Any, job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    uri = S3Uri.parse(job["inputManifestUri"])
    body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read().decode()
    return {line["source-ref"]: line for line in map(json.loads, body.splitlines())}


def write_output(s3: Any, uri: str, lines: list[dict[str, Any]]) -> None:
    parsed = S3Uri.parse(uri)
    s3.put_object(
        Bucket=parsed.bucket, Key=parsed.key, Body="".join(json.dumps(x) + "\n" for x in lines).encode()
    )


def read_records(s3: Any, uri: S3Uri) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines() if line]


def boxes_attr(boxes: list[tuple[int, int, int, int, int]], status: str) -> dict[str, Any]:
    """`reviewed-boxes` and its metadata as the adjustment task writes them."""
    return {
        "reviewed-boxes": {
            "image_size": [SIZE],
            "annotations": [
                {"class_id": c, "left": x, "top": y, "width": w, "height": h} for c, x, y, w, h in boxes
            ],
        },
        "reviewed-boxes-metadata": {
            "objects": [{"confidence": 0.0} for _ in boxes],
            "class-map": {"0": "cat", "1": "dog"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2024-01-03T00:00:00.000000",
            "job-name": "labeling-job/lab-run1-det-000",
            "adjustment-status": status,
        },
    }


def test_collect_turns_every_input_image_into_one_outcome(aws: tuple[Any, Any], layout: RunLayout) -> None:
    s3, sagemaker = aws
    # GIVEN two detection jobs (a-d, then g-h) and one classification job (e-f)
    det_jobs = plan(
        s3,
        layout,
        [
            det_task("a", [box("cat", 64, 96, 192, 120)]),
            det_task(
                "b",
                [
                    box("cat", 10, 10, 100, 100),  # accepted unchanged
                    box("cat", 300, 300, 50, 50),  # moved a little
                    box("dog", 500, 20, 60, 60),  # deleted
                    box("cat", 200, 200, 40, 40),  # relabelled as dog
                ],
            ),
            det_task("c", [box("dog", 1, 2, 30, 40)]),
            det_task("d", []),
            det_task("g", [box("cat", 5, 5, 50, 50)]),
            det_task("h", []),
        ],
        "detection",
        ["cat", "dog"],
        per_job=4,
    )
    cls_jobs = plan(
        s3,
        layout,
        [cls_task("e", ["outdoor"]), cls_task("f", [])],
        "classification",
        ["indoor", "outdoor"],
        10,
    )
    det0, det1 = det_jobs
    (cls0,) = cls_jobs

    # ... the first detection job completed: a unadjusted, b adjusted, c failed, d missing
    det0_inputs = input_lines(s3, det0)
    det0_output = f"s3://{BUCKET}/runs/run1/review/groundtruth-output/{det0['jobName']}/manifests/output/output.manifest"
    write_output(
        s3,
        det0_output,
        [
            {**det0_inputs["s3://images/a.jpg"], **boxes_attr([(0, 64, 96, 192, 120)], "unadjusted")},
            {
                **det0_inputs["s3://images/b.jpg"],
                **boxes_attr(
                    [
                        (0, 10, 10, 100, 100),
                        (0, 305, 302, 50, 50),
                        (1, 200, 200, 40, 40),
                        (0, 400, 400, 30, 30),
                    ],
                    "adjusted",
                ),
            },
            {
                **det0_inputs["s3://images/c.jpg"],
                "reviewed-boxes-metadata": {
                    "failure-reason": "ClientError: worker did not submit",
                    "human-annotated": "yes",
                },
            },
        ],
    )
    # ... the classification job was stopped after one answer, its output at the documented place
    cls_inputs = input_lines(s3, cls0)
    write_output(
        s3,
        f"{cls0['outputUri']}{cls0['jobName']}/manifests/output/output.manifest",
        [
            {
                **cls_inputs["s3://images/e.jpg"],
                "reviewed-labels": {
                    "labels": ["indoor"],
                    "rejected": ["outdoor"],
                    "added": ["indoor"],
                    "workers": 1,
                },
                "reviewed-labels-metadata": {
                    "type": "groundtruth/custom",
                    "human-annotated": "yes",
                    "job-name": "x",
                },
            }
        ],
    )
    stub = Stubber(sagemaker)
    stub.add_response(
        "describe_labeling_job",
        describe_response(det0, "Completed", output_uri=det0_output),
        {"LabelingJobName": det0["jobName"]},
    )
    stub.add_response(
        "describe_labeling_job",
        describe_response(det1, "Failed", failure="ClientError: the input manifest is not readable"),
        {"LabelingJobName": det1["jobName"]},
    )
    stub.add_response(
        "describe_labeling_job", describe_response(cls0, "Stopped"), {"LabelingJobName": cls0["jobName"]}
    )

    # WHEN collecting
    with stub:
        summary = collect_review(s3, sagemaker, layout, [*det_jobs, *cls_jobs])
    stub.assert_no_pending_responses()

    # THEN the summary is small and adds up
    assert summary == {
        "reviewed": 3,
        "skipped": 5,
        "jobs": {det0["jobName"]: "Completed", det1["jobName"]: "Failed", cls0["jobName"]: "Stopped"},
        "failedJobs": [
            {"jobName": det1["jobName"], "failureReason": "ClientError: the input manifest is not readable"}
        ],
    }
    reviewed = {r["source-ref"]: r for r in read_records(s3, layout.reviewed)}
    skipped = {r["source-ref"]: r for r in read_records(s3, layout.skipped_part("review", 0))}
    assert set(reviewed) | set(skipped) == {f"s3://images/{n}.jpg" for n in "abcdefgh"}
    assert not set(reviewed) & set(skipped)

    # ... an unadjusted image keeps the predictions
    assert reviewed["s3://images/a.jpg"] == {
        "source-ref": "s3://images/a.jpg",
        "taskType": "detection",
        "image_size": SIZE,
        "boxes": [{"label": "cat", "left": 64, "top": 96, "width": 192, "height": 120, "status": "kept"}],
        "labels": [],
        "removed": [],
        "reviewer": f"groundtruth:{det0['jobName']}",
        "humanReviewed": True,
    }
    # ... an adjusted image: kept, adjusted, relabelled (adjusted), added, removed
    b = reviewed["s3://images/b.jpg"]
    assert b["boxes"] == [
        {"label": "cat", "left": 10, "top": 10, "width": 100, "height": 100, "status": "kept"},
        {"label": "cat", "left": 305, "top": 302, "width": 50, "height": 50, "status": "adjusted"},
        {"label": "dog", "left": 200, "top": 200, "width": 40, "height": 40, "status": "adjusted"},
        {"label": "cat", "left": 400, "top": 400, "width": 30, "height": 30, "status": "added"},
    ]
    assert b["removed"] == [{"label": "dog", "left": 500, "top": 20, "width": 60, "height": 60}]
    # ... a verified classification image
    assert reviewed["s3://images/e.jpg"] == {
        "source-ref": "s3://images/e.jpg",
        "taskType": "classification",
        "image_size": SIZE,
        "boxes": [],
        "labels": [{"label": "indoor", "status": "added"}],
        "removed": [{"label": "outdoor"}],
        "reviewer": f"groundtruth:{cls0['jobName']}",
        "humanReviewed": True,
    }
    # ... and the skips say why
    assert {ref: r["reason"] for ref, r in skipped.items()} == {
        "s3://images/c.jpg": "not-reviewed",
        "s3://images/d.jpg": "not-reviewed",
        "s3://images/f.jpg": "not-reviewed",
        "s3://images/g.jpg": "review-failed",
        "s3://images/h.jpg": "review-failed",
    }
    assert all(r["stage"] == "review" for r in skipped.values())
    assert "worker did not submit" in skipped["s3://images/c.jpg"]["detail"]
    assert "input manifest is not readable" in skipped["s3://images/g.jpg"]["detail"]


def test_a_job_that_was_never_created_fails_its_images(aws: tuple[Any, Any], layout: RunLayout) -> None:
    s3, sagemaker = aws
    (job,) = plan(s3, layout, [det_task("a", [])], "detection", ["cat"], 10)
    stub = Stubber(sagemaker)
    stub.add_client_error(
        "describe_labeling_job", service_error_code="ResourceNotFound", http_status_code=400
    )

    with stub:
        summary = collect_review(s3, sagemaker, layout, [job])

    assert summary["jobs"] == {job["jobName"]: "NotFound"}
    assert summary["failedJobs"][0]["jobName"] == job["jobName"]
    (skip,) = read_records(s3, layout.skipped_part("review", 0))
    assert skip["reason"] == "review-failed"
    assert read_records(s3, layout.reviewed) == []


def test_collecting_an_unfinished_job_is_an_error(aws: tuple[Any, Any], layout: RunLayout) -> None:
    s3, sagemaker = aws
    (job,) = plan(s3, layout, [det_task("a", [])], "detection", ["cat"], 10)
    stub = Stubber(sagemaker)
    stub.add_response("describe_labeling_job", describe_response(job, "InProgress"))

    with stub, pytest.raises(ReviewBackendError, match="InProgress"):
        collect_review(s3, sagemaker, layout, [job])


def test_no_jobs_writes_empty_outputs(aws: tuple[Any, Any], layout: RunLayout) -> None:
    s3, sagemaker = aws

    assert collect_review(s3, sagemaker, layout, []) == {
        "reviewed": 0,
        "skipped": 0,
        "jobs": {},
        "failedJobs": [],
    }
    assert read_records(s3, layout.reviewed) == []


# --- box matching ------------------------------------------------------------------------------------


def px(label: str, left: int, top: int, width: int, height: int) -> dict[str, Any]:
    return {"label": label, "left": left, "top": top, "width": width, "height": height}


def test_a_box_moved_too_far_is_a_removal_and_an_addition() -> None:
    boxes, removed = diff_boxes([px("cat", 0, 0, 10, 10)], [px("cat", 50, 50, 10, 10)])

    assert [b["status"] for b in boxes] == ["added"]
    assert removed == [px("cat", 0, 0, 10, 10)]


def test_each_prediction_matches_at_most_one_reviewed_box() -> None:
    boxes, removed = diff_boxes(
        [px("cat", 0, 0, 100, 100)], [px("cat", 0, 0, 100, 100), px("cat", 2, 2, 100, 100)]
    )

    assert [b["status"] for b in boxes] == ["kept", "added"]
    assert removed == []


def test_same_label_matches_before_a_relabelled_box() -> None:
    # The dog box overlaps the cat prediction more, but a same-label match wins.
    boxes, removed = diff_boxes(
        [px("cat", 0, 0, 100, 100)],
        [px("dog", 0, 0, 100, 99), px("cat", 10, 10, 100, 100)],
    )

    assert [(b["label"], b["status"]) for b in boxes] == [("dog", "added"), ("cat", "adjusted")]
    assert removed == []


# --- answers are not trusted -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ({"left": float("nan")}, "box left"),
        ({"width": float("inf")}, "box width"),
        ({"top": "12"}, "box top"),
        ({"height": None}, "box height"),
    ],
)
def test_an_answer_that_cannot_be_read_skips_only_its_image(
    aws: tuple[Any, Any], layout: RunLayout, broken: dict[str, Any], why: str
) -> None:
    # GIVEN a completed job whose output has one answer with a coordinate that is not a finite number
    s3, sagemaker = aws
    (job,) = plan(s3, layout, [det_task("a", []), det_task("b", [])], "detection", ["cat"], 10)
    inputs = input_lines(s3, job)
    bad = boxes_attr([(0, 10, 10, 100, 100)], "adjusted")
    bad["reviewed-boxes"]["annotations"][0].update(broken)
    output = f"{job['outputUri']}{job['jobName']}/manifests/output/output.manifest"
    # json.dumps writes NaN and Infinity, as a broken writer would
    write_output(
        s3,
        output,
        [
            {**inputs["s3://images/a.jpg"], **bad},
            {**inputs["s3://images/b.jpg"], **boxes_attr([(0, 10, 10, 100, 100)], "adjusted")},
        ],
    )
    stub = Stubber(sagemaker)
    stub.add_response("describe_labeling_job", describe_response(job, "Completed", output_uri=output))

    # WHEN it is collected
    with stub:
        summary = collect_review(s3, sagemaker, layout, [job])

    # THEN that image is skipped as invalid, saying why, and the other is reviewed
    assert (summary["reviewed"], summary["skipped"]) == (1, 1)
    (skip,) = read_records(s3, layout.skipped_part("review", 0))
    assert skip["source-ref"] == "s3://images/a.jpg" and skip["reason"] == "invalid-annotation"
    assert why in skip["detail"]


def _collect_one_box_at_twice_the_size(
    aws: tuple[Any, Any], layout: RunLayout, box: tuple[int, int, int, int, int]
) -> dict[str, Any]:
    """The reviewed record of a completed job whose one answer was drawn on the image as Ground
    Truth sized it, at twice the run's measure."""
    s3, sagemaker = aws
    (job,) = plan(s3, layout, [det_task("a", [])], "detection", ["cat"], 10)
    answer = boxes_attr([box], "adjusted")
    answer["reviewed-boxes"]["image_size"] = [
        {"width": SIZE["width"] * 2, "height": SIZE["height"] * 2, "depth": 3}
    ]
    output = f"{job['outputUri']}{job['jobName']}/manifests/output/output.manifest"
    write_output(s3, output, [{**input_lines(s3, job)["s3://images/a.jpg"], **answer}])
    stub = Stubber(sagemaker)
    stub.add_response("describe_labeling_job", describe_response(job, "Completed", output_uri=output))
    with stub:
        collect_review(s3, sagemaker, layout, [job])
    (record,) = read_records(s3, layout.reviewed)
    return record


def test_boxes_drawn_on_a_differently_sized_image_are_scaled_to_the_runs_size(
    aws: tuple[Any, Any], layout: RunLayout
) -> None:
    # GIVEN an answer whose image Ground Truth sized at twice the run's measure
    record = _collect_one_box_at_twice_the_size(aws, layout, (0, 20, 40, 200, 100))
    # THEN the record states the run's size, and the box is where it was drawn on the image
    assert record["image_size"] == SIZE
    assert record["boxes"] == [
        {"label": "cat", "left": 10, "top": 20, "width": 100, "height": 50, "status": "added"}
    ]


def test_scaled_edges_round_half_up_like_every_other_stage(aws: tuple[Any, Any], layout: RunLayout) -> None:
    # GIVEN an answer at twice the run's size whose edges fall on half pixels once scaled
    record = _collect_one_box_at_twice_the_size(aws, layout, (0, 21, 41, 201, 101))
    # THEN the edges 10.5 / 111 and 20.5 / 71 become 11 / 111 and 21 / 71 (they were truncated
    # to 10 and 20 when the manifest was built, moving the box half a pixel left and up)
    assert record["boxes"] == [
        {"label": "cat", "left": 11, "top": 21, "width": 100, "height": 50, "status": "added"}
    ]


@pytest.mark.parametrize(
    ("boxes", "reason", "says"),
    [
        ([(0, 10, 10, -100, 100)], "invalid-box", "positive width and height"),
        ([(0, 10, 10, 100, 0)], "invalid-box", "positive width and height"),
        ([(0, 700, 10, 50, 50)], "invalid-box", "outside the 640 x 480 image"),
        ([(0, i % 600, 10, 5, 5) for i in range(10_000)], "too-many-boxes", "10,000 boxes"),
        ([(7, 10, 10, 100, 100)], "unknown-label", "'7' is not one of the run's labels"),
    ],
    ids=["negative-width", "zero-height", "off-the-image", "10000-boxes", "unknown-class-id"],
)
def test_an_answer_custom_labels_cannot_take_skips_its_image_with_a_reason(
    aws: tuple[Any, Any],
    layout: RunLayout,
    boxes: list[tuple[int, int, int, int, int]],
    reason: str,
    says: str,
) -> None:
    # GIVEN a completed job with one answer Custom Labels could not train on, and one good answer
    s3, sagemaker = aws
    (job,) = plan(s3, layout, [det_task("a", []), det_task("b", [])], "detection", ["cat"], 10)
    inputs = input_lines(s3, job)
    output = f"{job['outputUri']}{job['jobName']}/manifests/output/output.manifest"
    write_output(
        s3,
        output,
        [
            {**inputs["s3://images/a.jpg"], **boxes_attr(boxes, "adjusted")},
            {**inputs["s3://images/b.jpg"], **boxes_attr([(0, 10, 10, 100, 100)], "adjusted")},
        ],
    )
    stub = Stubber(sagemaker)
    stub.add_response("describe_labeling_job", describe_response(job, "Completed", output_uri=output))
    # WHEN it is collected
    with stub:
        summary = collect_review(s3, sagemaker, layout, [job])
    # THEN that image is skipped with its reason, saying why; only the good answer is a reviewed record
    assert (summary["reviewed"], summary["skipped"]) == (1, 1)
    (skip,) = read_records(s3, layout.skipped_part("review", 0))
    assert skip["source-ref"] == "s3://images/a.jpg" and skip["reason"] == reason
    assert says in skip["detail"]
    assert [r["source-ref"] for r in read_records(s3, layout.reviewed)] == ["s3://images/b.jpg"]


def test_people_s_seconds_come_from_the_worker_responses_of_a_sample(aws: tuple[Any, Any]) -> None:
    # GIVEN a job's worker-response files (annotations/worker-response/iteration-1/<index>/...):
    # object 0 with two workers who say how long they spent, object 1 with only their timestamps,
    # object 2 unreadable
    s3, _ = aws
    s3.create_bucket(Bucket="times")
    job = {"jobName": "lab-run-det-000", "outputUri": "s3://times/out/"}
    prefix = "out/lab-run-det-000/annotations/worker-response/iteration-1"
    documents = {
        0: {"answers": [{"timeSpentInSeconds": 12.5}, {"timeSpentInSeconds": 7.5}]},
        1: {
            "answers": [
                {"acceptanceTime": "2026-12-05T10:00:00.000Z", "submissionTime": "2026-12-05T10:00:40.000Z"}
            ]
        },
    }
    for index, document in documents.items():
        s3.put_object(
            Bucket="times", Key=f"{prefix}/{index}/2026-12-05_10:00:41.json", Body=json.dumps(document)
        )
    s3.put_object(Bucket="times", Key=f"{prefix}/2/2026-12-05_10:00:41.json", Body=b"not json")
    # WHEN the collect reads them
    seconds = collect_module.worker_seconds(s3, job)
    # THEN each answered object has the workers' time, the unreadable one none
    assert seconds == {0: 20.0, 1: 40.0}
    # AND a large job is read through a sample, never file by file
    assert collect_module.worker_seconds(s3, job, sample=1).keys() <= {0, 1}
    assert len(collect_module.worker_seconds(s3, job, sample=1)) <= 1
