"""DetectLabels core: moto S3 for the images and run folder, a Stubber on a real Rekognition client
(requests and responses checked against the API model)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from fixtures_aws import IMAGES_BUCKET, MODEL_ARN, OUTPUT_BUCKET, REGION, jpeg, png, put_object, read_jsonl
from labeling_loop.inference.batch import BatchItem, Progress, run_batch
from labeling_loop.inference.images import MAX_BYTES
from labeling_loop.kernel.aws_clients import INFERENCE
from labeling_loop.kernel.errors import ModelNotRunningError
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from PIL import Image

LAYOUT = RunLayout.for_run(S3Uri(OUTPUT_BUCKET, "labeling-runs/"), "run-1")
CAT = {
    "Name": "cat",
    "Confidence": 87.5,
    "Geometry": {"BoundingBox": {"Left": 0.1, "Top": 0.2, "Width": 0.3, "Height": 0.25}},
}
OUTDOOR = {"Name": "outdoor", "Confidence": 64.0}


@pytest.fixture
def rekognition(aws: SimpleNamespace) -> Iterator[Stubber]:
    client = boto3.client("rekognition", region_name=REGION, config=INFERENCE)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def put(aws: SimpleNamespace, key: str, body: bytes) -> str:
    return put_object(aws.s3, IMAGES_BUCKET, key, body)


def expect_detect(
    stubber: Stubber, key: str, labels: list[dict[str, Any]], min_confidence: float = 50.0
) -> None:
    stubber.add_response(
        "detect_custom_labels",
        {"CustomLabels": labels},
        {
            "ProjectVersionArn": MODEL_ARN,
            "Image": {"S3Object": {"Bucket": IMAGES_BUCKET, "Name": key}},
            "MinConfidence": min_confidence,
        },
    )


def expect_error(stubber: Stubber, code: str, status: int = 400) -> None:
    stubber.add_client_error("detect_custom_labels", service_error_code=code, http_status_code=status)


def write_inventory(s3: Any, refs: list[str]) -> None:
    from fixtures_aws import write_jsonl

    write_jsonl(s3, LAYOUT.inventory, [{"source-ref": ref} for ref in refs])


def batch_of(refs: list[str], batch_id: int = 0) -> BatchItem:
    return BatchItem(batch_id, 0, len(refs), calls_per_second=1000.0, calls_in_flight=10.0)


def infer(
    aws: SimpleNamespace, stubber: Stubber, refs: list[str], batch_id: int = 0, **kwargs: Any
) -> Progress:
    write_inventory(aws.s3, refs)
    return run_batch(
        kwargs.pop("s3", aws.s3),
        stubber.client,
        LAYOUT,
        batch=batch_of(refs, batch_id),
        progress=Progress(),
        model_arn=MODEL_ARN,
        min_confidence=kwargs.pop("min_confidence", 50.0),
        seconds_left=kwargs.pop("seconds_left", lambda: 900.0),
        threads=1,  # the Stubber answers in order
        **kwargs,
    )


def part(batch_id: int, done: int = 0) -> str:
    return f"{batch_id:05d}-{done:07d}"


def predictions(aws: SimpleNamespace, batch_id: int = 0) -> list[dict[str, Any]]:
    return read_jsonl(aws.s3, LAYOUT.predictions_part(part(batch_id)))


def skips(aws: SimpleNamespace, batch_id: int = 0) -> list[dict[str, Any]]:
    return read_jsonl(aws.s3, LAYOUT.skipped_part("inference", part(batch_id)))


# Predictions --------------------------------------------------------------------------------------


def test_predictions_follow_the_data_contract(aws: SimpleNamespace, rekognition: Stubber) -> None:
    # GIVEN a 640x480 JPEG and a phone photo stored portrait that displays 640x480 (orientation 6)
    upright = put(aws, "photos/a.jpg", jpeg((640, 480)))
    turned = put(aws, "photos/b.jpg", jpeg((640, 480), orientation=6))
    expect_detect(rekognition, "photos/a.jpg", [CAT, OUTDOOR], min_confidence=42.5)
    expect_detect(rekognition, "photos/b.jpg", [], min_confidence=42.5)

    # WHEN the batch is inferred at the run's minConfidence
    result = infer(aws, rekognition, [upright, turned], batch_id=3, min_confidence=42.5)

    # THEN one prediction record per image, sized as displayed, boxes as Rekognition's ratios,
    # image-level labels without a box, images without labels kept (they are reviewed too)
    assert (result.done, result.inferred, result.skipped) == (2, 2, 0)
    assert predictions(aws, 3) == [
        {
            "source-ref": upright,
            "image_size": {"width": 640, "height": 480, "depth": 3},
            "orientation": 1,
            "labels": [
                {
                    "name": "cat",
                    "confidence": 87.5,
                    "box": {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.25},
                },
                {"name": "outdoor", "confidence": 64.0},
            ],
        },
        {
            "source-ref": turned,
            "image_size": {"width": 640, "height": 480, "depth": 3},
            "orientation": 6,
            "labels": [],
        },
    ]
    assert skips(aws, 3) == []


def test_keys_with_special_characters_are_sent_as_stored(aws: SimpleNamespace, rekognition: Stubber) -> None:
    # GIVEN an image whose key has a space, a plus and non-ASCII characters
    key = "photos/dir with space/a+b café-猫.png"
    source_ref = put(aws, key, png((320, 240)))
    # THEN Rekognition is asked for exactly that key (the Stubber checks the request)
    expect_detect(rekognition, key, [OUTDOOR])
    assert infer(aws, rekognition, [source_ref]).inferred == 1
    assert predictions(aws)[0]["source-ref"] == source_ref


# Images that cannot be inferred -------------------------------------------------------------------


def oversized_jpeg() -> bytes:
    """A valid header followed by padding: over 15 MB."""
    return jpeg((640, 480)) + bytes(MAX_BYTES)


def gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100)).save(buffer, "GIF")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("key", "body", "reason", "detail"),
    [
        ("photos/text.jpg", b"not an image at all\n", "corrupt-image", "not a readable image"),
        ("photos/empty.jpg", b"", "corrupt-image", "empty"),
        ("photos/huge.jpg", None, "image-too-large", "15 MB"),
        ("photos/tiny.png", png((48, 120)), "image-dimensions", "48x120"),
        ("photos/wide.jpg", jpeg((2100, 100)), "image-dimensions", "aspect ratio 21.0:1"),
        ("photos/anim.jpg", gif(), "unsupported-format", "GIF"),
    ],
    ids=["text", "empty", "over-15mb", "under-64px", "aspect-21", "gif-named-jpg"],
)
def test_bad_images_are_skipped_with_their_reason_and_never_sent(
    aws: SimpleNamespace, rekognition: Stubber, key: str, body: bytes | None, reason: str, detail: str
) -> None:
    # GIVEN a good image and a bad one in the same batch
    good = put(aws, "photos/good.jpg", jpeg())
    bad = put(aws, key, oversized_jpeg() if body is None else body)
    expect_detect(rekognition, "photos/good.jpg", [OUTDOOR])  # the only call the Stubber allows

    # WHEN the batch is inferred
    result = infer(aws, rekognition, [bad, good])

    # THEN the bad image is a skip record with the contract's reason, the good one is predicted,
    # and the batch does not fail
    assert (result.done, result.inferred, result.skipped) == (2, 1, 1)
    [skip] = skips(aws)
    assert {k: skip[k] for k in ("source-ref", "stage", "reason")} == {
        "source-ref": bad,
        "stage": "inference",
        "reason": reason,
    }
    assert detail in skip["detail"]
    assert [p["source-ref"] for p in predictions(aws)] == [good]


def test_an_image_deleted_after_listing_is_skipped(aws: SimpleNamespace, rekognition: Stubber) -> None:
    # GIVEN an image listed but gone by inference time
    missing = f"s3://{IMAGES_BUCKET}/photos/deleted.jpg"
    # WHEN inferred
    result = infer(aws, rekognition, [missing])
    # THEN it is skipped, not sent, and the batch goes on
    assert result.skipped == 1
    assert skips(aws)[0]["reason"] == "service-error"
    assert "NoSuchKey" in skips(aws)[0]["detail"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("InvalidImageFormatException", "corrupt-image"),
        ("InvalidS3ObjectException", "image-unreadable"),  # Rekognition cannot read the object: see outcome
        ("ImageTooLargeException", "image-too-large"),
        ("InvalidParameterException", "image-dimensions"),
    ],
)
def test_rekognition_image_errors_skip_the_image(
    aws: SimpleNamespace, rekognition: Stubber, code: str, reason: str
) -> None:
    # GIVEN an image whose header passes but which Rekognition refuses (e.g. truncated pixels)
    whole = jpeg((640, 480), quality=95)
    refused = put(aws, "photos/truncated.jpg", whole[: len(whole) // 2])
    good = put(aws, "photos/good.jpg", jpeg())
    expect_error(rekognition, code)
    expect_detect(rekognition, "photos/good.jpg", [CAT])

    # WHEN inferred
    result = infer(aws, rekognition, [refused, good])

    # THEN that image is skipped for the mapped reason; the rest of the batch is predicted
    assert (result.inferred, result.skipped) == (1, 1)
    assert skips(aws)[0]["reason"] == reason
    assert code in skips(aws)[0]["detail"]


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"]
)
def test_service_errors_left_after_retries_skip_the_image(
    aws: SimpleNamespace, rekognition: Stubber, code: str
) -> None:
    # GIVEN Rekognition still throttling (or failing) after botocore's own retries
    source_ref = put(aws, "photos/a.jpg", jpeg())
    expect_error(rekognition, code, 500 if code == "InternalServerError" else 400)
    # WHEN inferred
    result = infer(aws, rekognition, [source_ref])
    # THEN the image is skipped as a service error and the run goes on
    assert result.skipped == 1
    assert skips(aws)[0]["reason"] == "service-error"
    assert f"{code} after retries" in skips(aws)[0]["detail"]


def test_a_model_that_stopped_fails_the_batch_for_a_retry(aws: SimpleNamespace, rekognition: Stubber) -> None:
    # GIVEN the model stopped under the inference
    source_ref = put(aws, "photos/a.jpg", jpeg())
    expect_error(rekognition, "ResourceNotReadyException")
    # WHEN the batch is inferred
    with pytest.raises(ModelNotRunningError, match="not RUNNING"):
        infer(aws, rekognition, [source_ref])
    # THEN nothing but the inventory is written (the state machine retries the invocation)
    assert run_keys(aws) == [LAYOUT.inventory.key]


def test_unexpected_errors_fail_the_batch(aws: SimpleNamespace, rekognition: Stubber) -> None:
    # GIVEN a permissions problem (not an image's fault, not transient)
    source_ref = put(aws, "photos/a.jpg", jpeg())
    expect_error(rekognition, "AccessDeniedException")
    # THEN the batch fails loudly instead of skipping every image
    with pytest.raises(ClientError, match="AccessDeniedException"):
        infer(aws, rekognition, [source_ref])


# Idempotency --------------------------------------------------------------------------------------


def run_keys(aws: SimpleNamespace) -> list[str]:
    listed = aws.s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix=LAYOUT.root.key)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_a_retried_invocation_rewrites_the_same_two_objects(
    aws: SimpleNamespace, rekognition: Stubber
) -> None:
    # GIVEN a batch whose first invocation had one image throttled
    a = put(aws, "photos/a.jpg", jpeg())
    b = put(aws, "photos/b.jpg", jpeg())
    expect_detect(rekognition, "photos/a.jpg", [CAT])
    expect_error(rekognition, "ThrottlingException")
    first = infer(aws, rekognition, [a, b], batch_id=7)
    keys_after_first = run_keys(aws)

    # WHEN the state machine retries the batch and both images succeed
    expect_detect(rekognition, "photos/a.jpg", [CAT])
    expect_detect(rekognition, "photos/b.jpg", [OUTDOOR])
    second = infer(aws, rekognition, [a, b], batch_id=7)

    # THEN the same two objects are rewritten: no duplicate records, no stale skip (and the batch's
    # progress object, for `labeling-loop follow`, is the same one too)
    assert (
        keys_after_first
        == run_keys(aws)
        == [
            LAYOUT.inventory.key,
            LAYOUT.predictions_part(part(7)).key,
            LAYOUT.batch_progress(7).key,
            LAYOUT.skipped_part("inference", part(7)).key,
        ]
    )
    assert (first.inferred, first.skipped, second.inferred, second.skipped) == (1, 1, 2, 0)
    assert [p["source-ref"] for p in predictions(aws, 7)] == [a, b]
    assert skips(aws, 7) == []


def test_an_empty_batch_writes_empty_parts(aws: SimpleNamespace, rekognition: Stubber) -> None:
    # GIVEN a batch without images
    # WHEN inferred
    # THEN both parts exist and are empty
    result = infer(aws, rekognition, [], batch_id=1)
    assert (result.inferred, result.skipped) == (0, 0)
    assert predictions(aws, 1) == [] and skips(aws, 1) == []


# Headers that do not fit in the first read --------------------------------------------------------


def test_a_jpeg_with_a_large_icc_profile_is_inferred(aws: SimpleNamespace, rekognition: Stubber) -> None:
    # GIVEN a valid JPEG whose ICC profile (200 KB) is larger than the first ranged read
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 20, 30)).save(buffer, "JPEG", icc_profile=os.urandom(200_000))
    source_ref = put(aws, "photos/print-ready.jpg", buffer.getvalue())
    expect_detect(rekognition, "photos/print-ready.jpg", [OUTDOOR])
    try:
        # WHEN inferred
        result = infer(aws, rekognition, [source_ref])
        # THEN it is predicted like any other JPEG
        assert result.inferred == 1, skips(aws)
    finally:
        # (the Stubber fixture would otherwise report the unused response instead of the bug)
        rekognition._queue.clear()


# Reads bounded by the size limit, and access errors ------------------------------------------------


class HugeObjectS3:
    """S3 as a 2 GB object with a header cut off by the first read looks: the ranged GET answers its
    first bytes and the object's total size. Records every GET, and fails the test on a read of the
    whole object (which would exhaust the function's memory)."""

    def __init__(self, first_bytes: bytes, size: int) -> None:
        self.first_bytes, self.size = first_bytes, size
        self.ranges: list[str | None] = []

    def get_object(self, *, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:
        self.ranges.append(Range)
        assert Range is not None, "read the whole 2 GB object"
        start, end = (int(x) for x in Range.removeprefix("bytes=").split("-"))
        assert end - start < 16 * 1024 * 1024, f"read {end - start} bytes of it"
        data = self.first_bytes[start : end + 1]
        return {
            "Body": io.BytesIO(data),
            "ContentRange": f"bytes {start}-{start + len(data) - 1}/{self.size}",
        }


def test_a_huge_object_is_skipped_without_being_read() -> None:
    from labeling_loop.inference.detect import header_of
    from labeling_loop.inference.images import HEADER_BYTES, ImageRejected

    # GIVEN a 2 GB object whose JPEG header does not end within the first read (a large ICC profile)
    start = jpeg((640, 480), icc_profile=bytes(200_000))
    s3 = HugeObjectS3(start, 2 * 1024**3)
    assert len(start) > HEADER_BYTES
    # WHEN its header is read
    with pytest.raises(ImageRejected) as rejected:
        header_of(s3, S3Uri(IMAGES_BUCKET, "photos/huge.jpg"))
    # THEN it is too large, judged on its size; only the first bytes were asked for
    assert rejected.value.reason == "image-too-large"
    assert s3.ranges == [f"bytes=0-{HEADER_BYTES - 1}"]


def test_an_image_s3_refuses_to_read_is_unreadable_not_corrupt(
    aws: SimpleNamespace, rekognition: Stubber
) -> None:
    # GIVEN an image the function's role may not read (a bucket or KMS key policy)
    class RefusingReads:
        def __getattr__(self, name: str) -> Any:
            return getattr(aws.s3, name)

        def get_object(self, **params: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    s3 = RefusingReads()
    # WHEN it is inferred (the function reads its inventory; the image reads are refused)
    write_inventory(aws.s3, [f"s3://{IMAGES_BUCKET}/photos/a.jpg"])

    def refusing(Bucket: str, Key: str, **params: Any) -> Any:
        if Bucket == OUTPUT_BUCKET:
            return aws.s3.get_object(Bucket=Bucket, Key=Key, **params)
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    s3.get_object = refusing  # type: ignore[method-assign]
    refs = [f"s3://{IMAGES_BUCKET}/photos/a.jpg"]
    run_batch(
        s3,
        rekognition.client,
        LAYOUT,
        batch=batch_of(refs),
        progress=Progress(),
        model_arn=MODEL_ARN,
        min_confidence=50.0,
        seconds_left=lambda: 900.0,
        threads=1,
    )
    # THEN it is skipped as unreadable (an access problem, reported as such), and the model is not called
    (skip,) = read_jsonl(aws.s3, LAYOUT.skipped_part("inference", part(0)))
    assert skip["reason"] == "image-unreadable" and "AccessDenied" in skip["detail"]


def _skips(aws: SimpleNamespace, reasons: list[str]) -> None:
    from fixtures_aws import write_jsonl

    write_jsonl(
        aws.s3,
        LAYOUT.skipped_part("inference", 0),
        [
            {"source-ref": f"s3://{IMAGES_BUCKET}/{i}.jpg", "stage": "inference", "reason": r, "detail": ""}
            for i, r in enumerate(reasons)
        ],
    )


def test_a_run_whose_images_rekognition_cannot_read_fails_naming_the_bucket_and_the_fix(
    aws: SimpleNamespace,
) -> None:
    from labeling_loop.inference.outcome import check_outcome
    from labeling_loop.kernel.errors import InferenceFailedError

    # GIVEN a run where Rekognition could read none of the 10 images (a bucket in another region)
    _skips(aws, ["image-unreadable"] * 10)
    # WHEN inference is checked before the review is planned
    with pytest.raises(InferenceFailedError) as failed:
        check_outcome(
            aws.s3, LAYOUT, images_to_infer=10, images=f"s3://{IMAGES_BUCKET}/photos/", region=REGION
        )
    # THEN the run fails, naming the images, the region and what to check
    message = str(failed.value)
    assert f"s3://{IMAGES_BUCKET}/photos/" in message and REGION in message and "kms:Decrypt" in message


def test_service_error_skips_past_a_tenth_fail_the_run_and_a_few_do_not(aws: SimpleNamespace) -> None:
    from labeling_loop.inference.outcome import check_outcome
    from labeling_loop.kernel.errors import InferenceFailedError

    images = f"s3://{IMAGES_BUCKET}/photos/"
    # GIVEN 2 images of 20 refused by the service (and one corrupt, the image's own fault)
    _skips(aws, ["service-error", "service-error", "corrupt-image"])
    # THEN the run goes on, with those reported
    assert check_outcome(aws.s3, LAYOUT, images_to_infer=20, images=images, region=REGION) == {
        "service-error": 2,
        "corrupt-image": 1,
    }
    # BUT with 3 of 20 (more than a tenth) it fails, saying why
    _skips(aws, ["service-error"] * 3)
    with pytest.raises(InferenceFailedError, match="refused 3 of 20 images after retries"):
        check_outcome(aws.s3, LAYOUT, images_to_infer=20, images=images, region=REGION)


# Batches longer than one invocation -----------------------------------------------------------------


def test_an_invocation_stops_before_its_time_runs_out_and_the_next_one_continues(
    aws: SimpleNamespace, rekognition: Stubber
) -> None:
    from labeling_loop.inference.batch import RESERVE_S

    # GIVEN a batch of four images, and an invocation whose time runs short after its second image
    refs = [put(aws, f"photos/{name}.jpg", jpeg()) for name in "abcd"]
    write_inventory(aws.s3, refs)
    batch = batch_of(refs, batch_id=2)
    clock = iter([900.0, RESERVE_S - 1])  # asked before the 2nd and the 3rd image
    for name in "ab":
        expect_detect(rekognition, f"photos/{name}.jpg", [OUTDOOR])

    def run(progress: Progress, seconds_left: Any) -> Progress:
        return run_batch(
            aws.s3,
            rekognition.client,
            LAYOUT,
            batch=batch,
            progress=progress,
            model_arn=MODEL_ARN,
            min_confidence=50.0,
            seconds_left=seconds_left,
            threads=1,
        )

    # WHEN the first invocation runs
    first = run(Progress(), lambda: next(clock))
    # THEN it did the first two images and says the batch is not finished, with its flow state
    assert (first.done, first.inferred) == (2, 2)
    assert first.to_dict(batch)["finished"] is False and first.flow is not None

    # WHEN the child calls the function again with that progress
    for name in "cd":
        expect_detect(rekognition, f"photos/{name}.jpg", [OUTDOOR])
    second = run(Progress.of(first.to_dict(batch)), lambda: 900.0)
    # THEN it continues after them, and every image is predicted exactly once across the two parts
    assert (second.done, second.inferred, second.to_dict(batch)["finished"]) == (4, 4, True)
    parts = [read_jsonl(aws.s3, LAYOUT.predictions_part(p)) for p in (part(2, 0), part(2, 2))]
    assert [[p["source-ref"] for p in records] for records in parts] == [refs[:2], refs[2:]]


def test_an_invocation_always_infers_at_least_one_image(aws: SimpleNamespace, rekognition: Stubber) -> None:
    # GIVEN an invocation started with less than the reserve left (so a batch can never stall)
    refs = [put(aws, f"photos/{name}.jpg", jpeg()) for name in "ab"]
    expect_detect(rekognition, "photos/a.jpg", [OUTDOOR])
    # WHEN it runs
    result = infer(aws, rekognition, refs, seconds_left=lambda: 1.0)
    # THEN it inferred one image and left the other for the next invocation
    assert (result.done, result.inferred) == (1, 1)


def test_a_batch_reads_only_its_slice_of_the_inventory(aws: SimpleNamespace) -> None:
    from labeling_loop.inference.batch import inventory_slice

    refs = [f"s3://{IMAGES_BUCKET}/photos/{i}.jpg" for i in range(6)]
    write_inventory(aws.s3, refs)
    assert list(inventory_slice(aws.s3, LAYOUT, 2, 3)) == refs[2:5]
    assert list(inventory_slice(aws.s3, LAYOUT, 5, 10)) == refs[5:]
