"""A batch's progress object (progress/batch-<id>.json): written as images finish, not more often
than the batch's pace needs, always at the end of an invocation, and never a reason to fail the
batch. `labeling-loop follow` reads it while the batch runs (tests/unit/ops/test_ops_progress.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from fixtures_aws import IMAGES_BUCKET, MODEL_ARN, OUTPUT_BUCKET, jpeg, put_object, write_jsonl
from labeling_loop.inference import batch_progress
from labeling_loop.inference.batch import BatchItem, Progress, run_batch
from labeling_loop.inference.batch_progress import EVERY_IMAGES, EVERY_SECONDS, BatchProgress
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri

LAYOUT = RunLayout.for_run(S3Uri(OUTPUT_BUCKET, "labeling-runs/"), "run-1")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class RecordingS3:
    def __init__(self, fail: bool = False) -> None:
        self.written: list[dict[str, Any]] = []
        self.fail = fail

    def put_object(self, **kwargs: Any) -> None:
        if self.fail:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")
        assert kwargs["Key"] == LAYOUT.batch_progress(4).key
        self.written.append(json.loads(kwargs["Body"]))


def test_written_when_enough_changed_and_always_at_the_end() -> None:
    clock, s3 = Clock(), RecordingS3()
    shown = BatchProgress(s3, LAYOUT, 4, 100, clock=clock)
    shown.update(1, 1, 0)  # the first image: written at once
    shown.update(2, 2, 0)  # one more, a moment later: not yet
    assert [w["done"] for w in s3.written] == [1]
    shown.update(1 + EVERY_IMAGES, 1 + EVERY_IMAGES, 0)  # enough images
    clock.now += EVERY_SECONDS
    shown.update(2 + EVERY_IMAGES, 1 + EVERY_IMAGES, 1)  # enough time
    shown.update(3 + EVERY_IMAGES, 2 + EVERY_IMAGES, 1, final=True)  # the end of the invocation
    shown.update(3 + EVERY_IMAGES, 2 + EVERY_IMAGES, 1, final=True)  # nothing new: not rewritten
    assert [w["done"] for w in s3.written] == [1, 1 + EVERY_IMAGES, 2 + EVERY_IMAGES, 3 + EVERY_IMAGES]
    last = s3.written[-1]
    assert last == {
        "batchId": 4,
        "count": 100,
        "done": 3 + EVERY_IMAGES,
        "inferred": 2 + EVERY_IMAGES,
        "skipped": 1,
        "finished": False,
        "updatedAt": last["updatedAt"],
    }


def test_a_failed_write_never_fails_the_batch() -> None:
    shown = BatchProgress(RecordingS3(fail=True), LAYOUT, 4, 10, clock=Clock())
    shown.update(10, 10, 0, final=True)
    assert shown.writes == 0


class ReadingRekognition:
    """DetectCustomLabels that, on each call, reads what `follow` would read: the progress object."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.seen: list[int | None] = []

    def detect_custom_labels(self, **_: Any) -> dict[str, Any]:
        try:
            body = self.s3.get_object(Bucket=OUTPUT_BUCKET, Key=LAYOUT.batch_progress(0).key)["Body"]
            self.seen.append(json.loads(body.read())["done"])
        except self.s3.exceptions.NoSuchKey:
            self.seen.append(None)
        return {"CustomLabels": []}


def test_the_batch_shows_its_progress_while_it_runs(
    aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch of 6 images, one call at a time, progress written after every image
    monkeypatch.setattr(batch_progress, "EVERY_IMAGES", 1)
    refs = [put_object(aws.s3, IMAGES_BUCKET, f"photos/{i}.jpg", jpeg()) for i in range(6)]
    write_jsonl(aws.s3, LAYOUT.inventory, [{"source-ref": ref} for ref in refs])
    rekognition = ReadingRekognition(aws.s3)

    # WHEN the batch runs
    done = run_batch(
        aws.s3,
        rekognition,
        LAYOUT,
        batch=BatchItem(0, 0, 6, calls_per_second=1000.0, calls_in_flight=10.0),
        progress=Progress(),
        model_arn=MODEL_ARN,
        min_confidence=50.0,
        seconds_left=lambda: 900.0,
        threads=1,
    )

    # THEN each call saw the images finished before it, and the end says the batch finished
    assert done.done == 6
    assert rekognition.seen == [None, 1, 2, 3, 4, 5]
    body = aws.s3.get_object(Bucket=OUTPUT_BUCKET, Key=LAYOUT.batch_progress(0).key)["Body"].read()
    final = json.loads(body)
    assert (final["done"], final["count"], final["inferred"], final["finished"]) == (6, 6, 6, True)
