"""The emulated Custom Labels model: status transitions, errors, throughput, metering, predictions."""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from labeling_loop.kernel.geometry import iou_of_dicts
from moto import mock_aws
from PIL import Image

from localcloud.data.dataset import detection_record
from localcloud.data.truth import Truth, TruthBox
from localcloud.services.base import ServiceError, throttling_error, validate_request
from localcloud.services.custom_labels import CustomLabelsConfig, CustomLabelsEmulator
from localcloud.services.custom_labels.model import TrainedModel

BUCKET = "images"


class FakeClock:
    """Manual time for the transitions and the token bucket: tests never sleep for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def png(width: int = 200, height: int = 100, exif_orientation: int | None = None, fmt: str = "PNG") -> bytes:
    image = Image.new("RGB", (width, height), (120, 30, 200))
    buffer = io.BytesIO()
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(buffer, format="JPEG", exif=exif.tobytes())
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    """One client per module (creating one costs ~0.1 s); moto's state is still new per test,
    because each test starts its own mock_aws and moto resets its backends then."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_ENV.items():
            patch.setenv(name, value)
        yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, s3_client: Any) -> Iterator[Any]:
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3_client.create_bucket(Bucket=BUCKET)
        yield s3_client


def truth_for(ref: str) -> Truth:
    return Truth(
        source_ref=ref,
        width=200,
        height=100,
        boxes=[TruthBox("cat", 20, 10, 60, 40), TruthBox("dog", 100, 50, 80, 40)],
        labels=["cat", "dog"],
    )


def make(
    s3: Any, clock: FakeClock, task_type: str = "detection", status: str = "STOPPED", **config: Any
) -> tuple[CustomLabelsEmulator, str]:
    # Error rates the same on every image (no concentration): these tests are about the mechanics;
    # where the model errs is tested on its own below.
    cfg = CustomLabelsConfig(
        **{"miss_rate": 0.0, "false_positive_rate": 0.0, "error_concentration": 0.0, **config}
    )
    emulator = CustomLabelsEmulator(s3, cfg, clock=clock, sleep=lambda _s: None)
    s3.put_object(Bucket=BUCKET, Key="a.png", Body=png())
    ref = f"s3://{BUCKET}/a.png"
    truth = {ref: truth_for(ref)}
    arn = emulator.add_model("proj", "v1", task_type, truth, status=status, labels=["cat", "dog", "bird"])
    return emulator, arn


def detect(emulator: CustomLabelsEmulator, arn: str, key: str = "a.png", **extra: Any) -> dict[str, Any]:
    return emulator.handle(
        "DetectCustomLabels",
        {"ProjectVersionArn": arn, "Image": {"S3Object": {"Bucket": BUCKET, "Name": key}}, **extra},
    )


def start_and_run(emulator: CustomLabelsEmulator, arn: str, clock: FakeClock, units: int = 1) -> None:
    assert emulator.handle("StartProjectVersion", {"ProjectVersionArn": arn, "MinInferenceUnits": units}) == {
        "Status": "STARTING"
    }
    clock.advance(1.0)
    assert emulator.status(arn) == "RUNNING"


def error_code(call: Any) -> str:
    with pytest.raises(ServiceError) as info:
        call()
    return info.value.code


# ---------------------------------------------------------------- ARNs and Describe*


def test_arns_and_describe_projects(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock)
    assert arn.startswith("arn:aws:rekognition:us-east-1:123456789012:project/proj/version/v1/")
    ts = arn.rsplit("/", 1)[1]
    assert len(ts) == 13 and ts.isdigit()
    projects = emulator.handle("DescribeProjects", {"ProjectNames": ["proj"]})["ProjectDescriptions"]
    assert len(projects) == 1
    project_arn = projects[0]["ProjectArn"]
    assert project_arn.startswith("arn:aws:rekognition:us-east-1:123456789012:project/proj/")
    # The project's timestamp is not the version's: it cannot be derived from the version ARN.
    assert project_arn.rsplit("/", 1)[1] != ts
    assert emulator.handle("DescribeProjects", {"ProjectNames": ["nope"]})["ProjectDescriptions"] == []


def test_a_projects_dataset_lists_the_labels_its_models_were_trained_on(aws: Any) -> None:
    # GIVEN a project whose model was trained on cat, dog and bird, and a second project
    clock = FakeClock()
    emulator, _ = make(aws, clock)
    emulator.add_model("other", "v1", "classification", {}, labels=["rose"])
    # WHEN the first state reads the project's datasets and their labels
    project = emulator.handle("DescribeProjects", {"ProjectNames": ["proj"]})["ProjectDescriptions"][0]
    (dataset,) = project["Datasets"]
    # THEN there is one TRAIN dataset of that project, whose ARN is the API's pattern
    assert dataset["DatasetType"] == "TRAIN" and dataset["Status"] == "CREATE_COMPLETE"
    assert dataset["DatasetArn"].startswith(project["ProjectArn"].rsplit("/", 1)[0] + "/dataset/train/")
    validate_request("rekognition", "ListDatasetLabels", {"DatasetArn": dataset["DatasetArn"]})
    # AND its labels are the model's, a page at a time (declared: the dataset holds no entries)
    first = emulator.handle("ListDatasetLabels", {"DatasetArn": dataset["DatasetArn"], "MaxResults": 2})
    rest = emulator.handle(
        "ListDatasetLabels", {"DatasetArn": dataset["DatasetArn"], "NextToken": first["NextToken"]}
    )
    rows = first["DatasetLabelDescriptions"] + rest["DatasetLabelDescriptions"]
    assert [r["LabelName"] for r in rows] == ["bird", "cat", "dog"]
    assert all(r["LabelStats"] == {"EntryCount": 0, "BoundingBoxCount": 0} for r in rows)
    # AND a dataset that does not exist is not found
    missing = dataset["DatasetArn"].replace("/proj/", "/nope/")
    assert error_code(lambda: emulator.handle("ListDatasetLabels", {"DatasetArn": missing})) == (
        "ResourceNotFoundException"
    )


def test_a_dataset_with_entries_counts_their_labels_and_keeps_the_declared_ones(aws: Any) -> None:
    # GIVEN the project's training dataset replaced by one entry with a cat and a dog box
    clock = FakeClock()
    emulator, _ = make(aws, clock)
    ref = f"s3://{BUCKET}/a.png"
    line = detection_record(ref, (200, 100), truth_for(ref).boxes)
    arn = emulator.add_dataset("proj", "TRAIN", [line])
    # WHEN its labels are listed
    (dataset,) = emulator.handle("DescribeProjects", {"ProjectNames": ["proj"]})["ProjectDescriptions"][0][
        "Datasets"
    ]
    rows = emulator.handle("ListDatasetLabels", {"DatasetArn": arn})["DatasetLabelDescriptions"]
    # THEN it is the project's only TRAIN dataset, with the entry's counts and the declared bird
    assert dataset["DatasetArn"] == arn
    assert {r["LabelName"]: r["LabelStats"] for r in rows} == {
        "bird": {"EntryCount": 0, "BoundingBoxCount": 0},
        "cat": {"EntryCount": 1, "BoundingBoxCount": 1},
        "dog": {"EntryCount": 1, "BoundingBoxCount": 1},
    }
    # AND a project whose datasets are removed lists none
    emulator.remove_datasets("proj")
    assert (
        emulator.handle("DescribeProjects", {"ProjectNames": ["proj"]})["ProjectDescriptions"][0]["Datasets"]
        == []
    )


def test_describe_project_versions_shape_order_and_filter(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock)
    arn2 = emulator.add_model("proj", "v2", "detection", {})
    project_arn = emulator.project_arn("proj")
    rows = emulator.handle("DescribeProjectVersions", {"ProjectArn": project_arn})[
        "ProjectVersionDescriptions"
    ]
    assert [r["ProjectVersionArn"] for r in rows] == [arn2, arn]  # newest first
    only = emulator.handle("DescribeProjectVersions", {"ProjectArn": project_arn, "VersionNames": ["v1"]})
    assert [r["ProjectVersionArn"] for r in only["ProjectVersionDescriptions"]] == [arn]
    assert only["ProjectVersionDescriptions"][0]["Status"] == "STOPPED"
    page = emulator.handle("DescribeProjectVersions", {"ProjectArn": project_arn, "MaxResults": 1})
    assert len(page["ProjectVersionDescriptions"]) == 1 and "NextToken" in page
    rest = emulator.handle(
        "DescribeProjectVersions",
        {"ProjectArn": project_arn, "MaxResults": 1, "NextToken": page["NextToken"]},
    )
    assert [r["ProjectVersionArn"] for r in rest["ProjectVersionDescriptions"]] == [arn]
    assert "NextToken" not in rest
    unknown = project_arn.rsplit("/", 1)[0] + "/1"
    assert error_code(lambda: emulator.handle("DescribeProjectVersions", {"ProjectArn": unknown})) == (
        "ResourceNotFoundException"
    )


def test_responses_fit_botocore_output_shapes(aws: Any) -> None:
    """Serialize each response with botocore's own serializer logic: every member must exist."""
    clock = FakeClock()
    emulator, arn = make(aws, clock)
    start_and_run(emulator, arn, clock)
    project_arn = emulator.project_arn("proj")
    responses = {
        "DescribeProjects": emulator.handle("DescribeProjects", {}),
        "ListDatasetLabels": emulator.handle(
            "ListDatasetLabels",
            {
                "DatasetArn": emulator.handle("DescribeProjects", {})["ProjectDescriptions"][0]["Datasets"][
                    0
                ]["DatasetArn"]
            },
        ),
        "DescribeProjectVersions": emulator.handle("DescribeProjectVersions", {"ProjectArn": project_arn}),
        "DetectCustomLabels": detect(emulator, arn),
        "StopProjectVersion": emulator.handle("StopProjectVersion", {"ProjectVersionArn": arn}),
    }
    for operation, response in responses.items():
        shape = validate_output_shape(operation)
        assert set(response) <= set(shape.members), operation
        _check_members(response, shape)


def validate_output_shape(operation: str) -> Any:
    from localcloud.services.base import operation_model

    return operation_model("rekognition", operation).output_shape


def _check_members(value: Any, shape: Any) -> None:
    if shape.type_name == "structure":
        assert isinstance(value, dict)
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{shape.name}: {unknown}"
        for key, item in value.items():
            _check_members(item, shape.members[key])
    elif shape.type_name == "list":
        for item in value:
            _check_members(item, shape.member)
    elif shape.type_name == "string" and getattr(shape, "enum", None):
        assert value in shape.enum


# ---------------------------------------------------------------- status transitions


def test_start_stop_lifecycle_and_in_use_errors(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, start_latency_s=5, stop_latency_s=3)
    start = {"ProjectVersionArn": arn, "MinInferenceUnits": 2}
    stop = {"ProjectVersionArn": arn}
    assert error_code(lambda: emulator.handle("StopProjectVersion", stop)) == "ResourceInUseException"
    emulator.handle("StartProjectVersion", start)
    assert emulator.status(arn) == "STARTING"
    assert error_code(lambda: emulator.handle("StartProjectVersion", start)) == "ResourceInUseException"
    # AWS documents stopping a running model (docs/aws-facts.md §1.2): a starting one is refused
    assert error_code(lambda: emulator.handle("StopProjectVersion", stop)) == "ResourceInUseException"
    assert emulator.status(arn) == "STARTING"
    assert error_code(lambda: detect(emulator, arn)) == "ResourceNotReadyException"
    clock.advance(5)
    assert emulator.status(arn) == "RUNNING"
    row = emulator.handle("DescribeProjectVersions", {"ProjectArn": emulator.project_arn("proj")})
    assert row["ProjectVersionDescriptions"][0]["MinInferenceUnits"] == 2
    assert error_code(lambda: emulator.handle("StartProjectVersion", start)) == "ResourceInUseException"
    assert emulator.handle("StopProjectVersion", stop) == {"Status": "STOPPING"}
    assert error_code(lambda: emulator.handle("StopProjectVersion", stop)) == "ResourceInUseException"
    assert error_code(lambda: emulator.handle("StartProjectVersion", start)) == "ResourceInUseException"
    clock.advance(3)
    assert emulator.status(arn) == "STOPPED"
    meter = emulator.meter(arn)
    assert meter["billed_seconds"] == pytest.approx(5.0)
    assert meter["running_seconds"] == pytest.approx(0.0)
    assert meter["intervals"] == [(1000.0, 1005.0)]
    assert meter["start_calls"] == 4 and meter["stop_calls"] == 4
    assert meter["not_ready_calls"] == 1


def test_fail_start_goes_to_failed_and_can_be_restarted(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, fail_start=True, start_latency_s=2)
    emulator.handle("StartProjectVersion", {"ProjectVersionArn": arn, "MinInferenceUnits": 1})
    clock.advance(2)
    assert emulator.status(arn) == "FAILED"
    assert emulator.meter(arn)["intervals"] == [(1000.0, 1002.0)]
    assert emulator.handle("StartProjectVersion", {"ProjectVersionArn": arn, "MinInferenceUnits": 1}) == {
        "Status": "STARTING"
    }


def test_real_time_transitions(aws: Any) -> None:
    # GIVEN emulators on the real clock (the default): one slow to start, one quick
    slow = CustomLabelsEmulator(aws, CustomLabelsConfig(start_latency_s=3600))
    quick = CustomLabelsEmulator(aws, CustomLabelsConfig(start_latency_s=0.05))
    slow_arn, quick_arn = (
        slow.add_model("p", "v", "detection", {}),
        quick.add_model("p", "v", "detection", {}),
    )
    # WHEN both are started
    for emulator, arn in ((slow, slow_arn), (quick, quick_arn)):
        emulator.handle("StartProjectVersion", {"ProjectVersionArn": arn, "MinInferenceUnits": 1})
    # THEN the slow one is STARTING, and the quick one becomes RUNNING as time passes, untouched
    assert slow.status(slow_arn) == "STARTING"
    give_up = time.monotonic() + 30  # a hang guard, not a speed requirement
    while quick.status(quick_arn) != "RUNNING" and time.monotonic() < give_up:
        time.sleep(0.01)
    assert quick.status(quick_arn) == "RUNNING"


def test_force_stop_under_inference(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock)
    start_and_run(emulator, arn, clock)
    detect(emulator, arn)
    clock.advance(10)
    emulator.force_stop(arn)
    assert error_code(lambda: detect(emulator, arn)) == "ResourceNotReadyException"
    meter = emulator.meter(arn)
    # started at 1000.0, RUNNING at 1000.2 (start latency), force-stopped at 1011.0
    assert meter["running_seconds"] == pytest.approx(10.8)
    assert meter["billed_seconds"] == pytest.approx(11.0)
    assert meter["intervals"][0][1] == pytest.approx(1011.0)


def test_running_model_meter_has_open_interval(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING")
    clock.advance(7)
    meter = emulator.meter(arn)
    assert meter["intervals"] == [(1000.0, None)]
    assert meter["running_seconds"] == pytest.approx(7.0)


# ---------------------------------------------------------------- validation and errors


def test_unknown_arn_and_bad_requests(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock)
    other = arn.replace("/v1/", "/v9/")
    assert error_code(
        lambda: emulator.handle("StartProjectVersion", {"ProjectVersionArn": other, "MinInferenceUnits": 1})
    ) == ("ResourceNotFoundException")
    assert error_code(lambda: detect(emulator, other)) == "ResourceNotFoundException"
    # Missing member, unknown member, wrong type, constraint (min 1, pattern)
    assert error_code(lambda: emulator.handle("StartProjectVersion", {"ProjectVersionArn": arn})) == (
        "ValidationException"
    )
    assert error_code(
        lambda: emulator.handle("StopProjectVersion", {"ProjectVersionArn": arn, "Force": 1})
    ) == ("ValidationException")
    assert error_code(
        lambda: emulator.handle("StartProjectVersion", {"ProjectVersionArn": arn, "MinInferenceUnits": "1"})
    ) == ("ValidationException")
    with pytest.raises(ServiceError) as info:
        emulator.handle("StopProjectVersion", {"ProjectVersionArn": "arn:aws:rekognition:bad-arn-value"})
    assert "regular expression pattern" in info.value.message and info.value.http_status == 400
    with pytest.raises(ServiceError) as info:
        emulator.handle(
            "DescribeProjectVersions", {"ProjectArn": emulator.project_arn("proj"), "MaxResults": 101}
        )
    assert "less than or equal to 100" in info.value.message
    assert error_code(lambda: emulator.handle("DeleteProject", {})) == "InvalidAction"


def test_validate_request_reports_botocore_errors() -> None:
    with pytest.raises(ServiceError) as info:
        validate_request("sagemaker", "DescribeLabelingJob", {})
    assert info.value.code == "ValidationException"
    assert "LabelingJobName" in info.value.message
    with pytest.raises(ServiceError) as info:
        validate_request("sagemaker", "DescribeLabelingJob", {"LabelingJobName": "bad_name"})
    assert "labelingJobName" in info.value.message
    validate_request("sagemaker", "DescribeLabelingJob", {"LabelingJobName": "good-name-1"})


def test_service_error_statuses() -> None:
    assert ServiceError("ResourceInUseException", "x").http_status == 400
    assert ServiceError("InternalServerError", "x").http_status == 500
    # ThrottlingException: Rekognition documents HTTP 500, SageMaker's common errors 400 (§1.5, §4.4)
    assert throttling_error("rekognition", "x").http_status == 500
    assert throttling_error("sagemaker", "x").http_status == 400
    body = throttling_error("rekognition", "x").to_response("rid")
    assert body["Error"]["Code"] == "ThrottlingException"
    assert body["ResponseMetadata"] == {"RequestId": "rid", "HTTPStatusCode": 500}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"GIF89a....", "InvalidImageFormatException"),
        (png()[:60], "InvalidImageFormatException"),  # truncated PNG: header ok, pixels missing
        (png(fmt="BMP"), "InvalidImageFormatException"),
        (png(32, 200), "InvalidParameterException"),  # below 64 px
        (png(4200, 70), "InvalidParameterException"),  # above 4096 px (and aspect > 20:1)
        (png(1400, 65), "InvalidParameterException"),  # aspect ratio > 20:1
    ],
)
def test_bad_images(aws: Any, body: bytes, code: str) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING")
    aws.put_object(Bucket=BUCKET, Key="bad.img", Body=body)
    assert error_code(lambda: detect(emulator, arn, key="bad.img")) == code


def test_missing_and_too_large_objects(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING")
    assert error_code(lambda: detect(emulator, arn, key="missing.png")) == "InvalidS3ObjectException"
    big = png() + b"\0" * (15 * 1024 * 1024)
    aws.put_object(Bucket=BUCKET, Key="big.png", Body=big)
    assert error_code(lambda: detect(emulator, arn, key="big.png")) == "ImageTooLargeException"
    raw = {"ProjectVersionArn": arn, "Image": {"Bytes": b"\0" * (4 * 1024 * 1024 + 1)}}
    assert error_code(lambda: emulator.handle("DetectCustomLabels", raw)) == "ImageTooLargeException"
    ok = emulator.handle("DetectCustomLabels", {"ProjectVersionArn": arn, "Image": {"Bytes": png()}})
    assert "CustomLabels" in ok


# ---------------------------------------------------------------- throughput and throttling


def test_throughput_limit_per_inference_unit(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, tps_per_inference_unit=2.0)
    start_and_run(emulator, arn, clock, units=2)  # 4 TPS, bucket of 4
    for _ in range(4):
        detect(emulator, arn)
    assert error_code(lambda: detect(emulator, arn)) == "ProvisionedThroughputExceededException"
    clock.advance(0.5)  # refills 2 calls
    detect(emulator, arn)
    detect(emulator, arn)
    assert error_code(lambda: detect(emulator, arn)) == "ProvisionedThroughputExceededException"
    meter = emulator.meter(arn)
    assert meter["detect_answered"] == 6 and meter["throttled_calls"] == 2 and meter["detect_calls"] == 8


def test_throttling_storm_window(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING", throttling_storm=(1, 2), tps_per_inference_unit=100)
    codes = []
    for _ in range(5):
        try:
            detect(emulator, arn)
            codes.append("ok")
        except ServiceError as error:
            codes.append(error.code)
    assert codes == ["ok", "ThrottlingException", "ThrottlingException", "ok", "ok"]


def test_throttling_storm_probability(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING", throttling_storm=1.0)
    with pytest.raises(ServiceError) as info:
        detect(emulator, arn)
    assert (info.value.code, info.value.http_status) == ("ThrottlingException", 500)


def test_concurrent_calls_respect_the_limit_and_sleep_outside_the_lock(aws: Any) -> None:
    # GIVEN an emulator whose per-call latency is a sleep that counts the sleepers inside it at
    # once and holds each one until all ten admitted calls are in (or gives up after a while)
    sleepers = {"now": 0, "most": 0}
    counter = threading.Lock()
    everyone_in = threading.Event()

    def sleep(_seconds: float) -> None:
        with counter:
            sleepers["now"] += 1
            sleepers["most"] = max(sleepers["most"], sleepers["now"])
            if sleepers["now"] == 10:
                everyone_in.set()
        everyone_in.wait(timeout=2)  # only bounds a serialised run; the assertion is on the count
        with counter:
            sleepers["now"] -= 1

    emulator = CustomLabelsEmulator(
        aws,
        CustomLabelsConfig(tps_per_inference_unit=10.0, detect_latency_s=0.05, miss_rate=0.0),
        clock=FakeClock(),  # the token bucket does not refill while the test runs, however slowly
        sleep=sleep,
    )
    aws.put_object(Bucket=BUCKET, Key="a.png", Body=png())
    arn = emulator.add_model("p", "v", "detection", {}, status="RUNNING")
    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            detect(emulator, arn)
            outcome = "ok"
        except ServiceError as error:
            outcome = error.code
        with lock:
            results.append(outcome)

    # WHEN 20 calls arrive at once
    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN the bucket of 10 (1 s of 10 TPS) admits 10 and throttles 10
    assert results.count("ok") == 10
    assert results.count("ProvisionedThroughputExceededException") == 10
    # AND the admitted calls slept all at once: the latency is outside the emulator's lock
    assert sleepers["most"] == 10


# ---------------------------------------------------------------- predictions


def test_detection_predictions_are_ratios_and_deterministic(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING", box_jitter=0.0, tps_per_inference_unit=100)
    labels = detect(emulator, arn)["CustomLabels"]
    assert {label["Name"] for label in labels} == {"cat", "dog"}
    cat = next(label for label in labels if label["Name"] == "cat")
    assert cat["Geometry"]["BoundingBox"] == pytest.approx(
        {"Left": 0.1, "Top": 0.1, "Width": 0.3, "Height": 0.4}
    )
    assert labels == sorted(labels, key=lambda label: -label["Confidence"])
    assert detect(emulator, arn)["CustomLabels"] == labels  # a retry gets the same answer


def test_jitter_stays_inside_the_image_and_near_the_truth(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING", box_jitter=0.2, tps_per_inference_unit=100)
    emulator.add_model(
        "edge",
        "v",
        "detection",
        {
            f"s3://{BUCKET}/a.png": Truth(
                f"s3://{BUCKET}/a.png", 200, 100, [TruthBox("cat", 150, 60, 50, 40)], ["cat"]
            )
        },
        status="RUNNING",
    )
    for label in detect(emulator, arn)["CustomLabels"]:
        box = label["Geometry"]["BoundingBox"]
        assert 0 <= box["Left"] <= 1 and 0 <= box["Top"] <= 1
        assert box["Left"] + box["Width"] <= 1 + 1e-9 and box["Top"] + box["Height"] <= 1 + 1e-9
    edge_arn = next(a for a in emulator._models if "/edge/" in a)
    box = detect(emulator, edge_arn)["CustomLabels"][0]["Geometry"]["BoundingBox"]
    assert box["Left"] + box["Width"] <= 1 + 1e-9 and box["Top"] + box["Height"] <= 1 + 1e-9


def test_min_confidence_max_results_and_noise(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING", tps_per_inference_unit=1000)
    assert detect(emulator, arn, MinConfidence=100.0)["CustomLabels"] == []
    assert len(detect(emulator, arn, MinConfidence=0.0, MaxResults=1)["CustomLabels"]) == 1
    noisy = CustomLabelsEmulator(
        aws, CustomLabelsConfig(miss_rate=0.5, false_positive_rate=0.5, tps_per_inference_unit=1000, seed=3)
    )
    keys = [f"n{i}.png" for i in range(40)]
    truth = {}
    for key in keys:
        aws.put_object(Bucket=BUCKET, Key=key, Body=png())
        truth[f"s3://{BUCKET}/{key}"] = truth_for(f"s3://{BUCKET}/{key}")
    noisy_arn = noisy.add_model("n", "v", "detection", truth, status="RUNNING", labels=["cat", "dog", "bird"])
    counts = [len(detect(noisy, noisy_arn, key=key, MinConfidence=0.0)["CustomLabels"]) for key in keys]
    assert min(counts) < 2 < max(counts) or len(set(counts)) > 1  # misses and false positives happen


def test_classification_model_returns_image_labels(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(
        aws,
        clock,
        task_type="classification",
        status="RUNNING",
        false_positive_rate=1.0,
        tps_per_inference_unit=100,
    )
    labels = detect(emulator, arn, MinConfidence=0.0)["CustomLabels"]
    assert all("Geometry" not in label for label in labels)
    names = [label["Name"] for label in labels]
    assert {"cat", "dog"} <= set(names) and "bird" in names  # the wrong extra label


def test_image_without_truth(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING", false_positive_rate=1.0, tps_per_inference_unit=100)
    aws.put_object(Bucket=BUCKET, Key="unknown.jpg", Body=png(fmt="JPEG"))
    labels = detect(emulator, arn, key="unknown.jpg", MinConfidence=0.0)["CustomLabels"]
    assert labels and all(label["Confidence"] <= 40 for label in labels)
    assert detect(emulator, arn, key="unknown.jpg")["CustomLabels"] == []  # below the assumed threshold


def test_exif_orientation_swaps_the_displayed_size(aws: Any) -> None:
    clock = FakeClock()
    emulator, arn = make(aws, clock, status="RUNNING", tps_per_inference_unit=100)
    # 1400 x 65 stored, but displayed 65 x 1400 rotated: still > 20:1, still rejected; a 100 x 64 one
    # rotated becomes 64 x 100, fine either way. Check the swap through the dimension limit instead:
    aws.put_object(Bucket=BUCKET, Key="rot.jpg", Body=png(4100, 64, exif_orientation=6))
    assert error_code(lambda: detect(emulator, arn, key="rot.jpg")) == "InvalidParameterException"
    aws.put_object(Bucket=BUCKET, Key="rot-ok.jpg", Body=png(300, 200, exif_orientation=6))
    assert "CustomLabels" in detect(emulator, arn, key="rot-ok.jpg")


# ---------------------------------------------------------------- where and how sure the model errs


def _many_truths(count: int) -> dict[str, Truth]:
    rng = random.Random(5)
    truths = {}
    for i in range(count):
        boxes = []
        for _ in range(rng.randint(1, 4)):
            w, h = rng.randint(40, 150), rng.randint(40, 150)
            boxes.append(
                TruthBox(
                    rng.choice(["cat", "dog", "bird"]), rng.randint(0, 640 - w), rng.randint(0, 480 - h), w, h
                )
            )
        ref = f"s3://{BUCKET}/many/{i}.jpg"
        truths[ref] = Truth(ref, 640, 480, boxes, sorted({b.label for b in boxes}))
    return truths


def _outcomes(
    config: CustomLabelsConfig, truths: dict[str, Truth]
) -> tuple[list[tuple[float, bool]], list[tuple[float, bool]]]:
    """(confidence, right) per prediction at IoU 0.75 with its label, and (least confidence, wrong)
    per image (a missed object, an extra or a wrong box)."""
    model = TrainedModel(
        "arn:aws:rekognition:us-east-1:1:project/p/version/v/1", "detection", truths, ["cat", "dog", "bird"]
    )
    predictions, images = [], []
    for ref, truth in truths.items():
        answer = model.predict(config, ref, 640, 480)
        true_boxes = [b.as_dict() for b in truth.boxes]
        used: set[int] = set()
        wrong = False
        for p in sorted(answer, key=lambda p: -p["Confidence"]):
            box = p["Geometry"]["BoundingBox"]
            pixels = {
                "left": box["Left"] * 640,
                "top": box["Top"] * 480,
                "width": box["Width"] * 640,
                "height": box["Height"] * 480,
            }
            match = next(
                (
                    k
                    for k, t in enumerate(true_boxes)
                    if k not in used and t["label"] == p["Name"] and iou_of_dicts(pixels, t) >= 0.75
                ),
                None,
            )
            if match is not None:
                used.add(match)
            predictions.append((p["Confidence"], match is not None))
            wrong = wrong or match is None
        wrong = wrong or len(used) < len(true_boxes)
        images.append((min((p["Confidence"] for p in answer), default=0.0), wrong))
    return predictions, images


def test_honest_confidences_are_calibrated_and_errors_sit_where_the_model_is_unsure() -> None:
    truths = _many_truths(2000)
    predictions, images = _outcomes(CustomLabelsConfig(seed=1), truths)
    # Calibrated: of the predictions reported at 80-90 and 90-100, that share is right.
    for low, high in ((80, 90), (90, 100)):
        outcomes = [right for c, right in predictions if low <= c < high]
        assert len(outcomes) > 300
        assert low / 100 - 0.04 <= sum(outcomes) / len(outcomes) <= high / 100 + 0.02
    # Concentrated: the surest quarter of the images is rarely wrong, the least sure often.
    images.sort(key=lambda item: -item[0])
    quarter = len(images) // 4
    surest = sum(w for _, w in images[:quarter]) / quarter
    least = sum(w for _, w in images[-quarter:]) / quarter
    assert surest < 0.03 and least > 0.5


def test_an_overconfident_model_claims_more_than_it_is_right() -> None:
    truths = _many_truths(1000)
    honest, _ = _outcomes(CustomLabelsConfig(seed=1), truths)
    bold, _ = _outcomes(CustomLabelsConfig(seed=1, overconfidence=10.0), truths)
    # The same predictions, each reported 10 points surer (up to 99.99): at 90-99 it claims more
    # than it is right, where the honest model is right as often as it says.
    claimed = [right for c, right in bold if 90 <= c < 99]
    said = [right for c, right in honest if 90 <= c < 99]
    assert sum(claimed) / len(claimed) < 0.88 <= 0.9 <= sum(said) / len(said)
    assert len(bold) == len(honest)


def test_without_concentration_errors_do_not_depend_on_the_image() -> None:
    truths = _many_truths(1500)
    _, images = _outcomes(CustomLabelsConfig(seed=1, error_concentration=0.0), truths)
    images.sort(key=lambda item: -item[0])
    quarter = len(images) // 4
    surest = sum(w for _, w in images[:quarter]) / quarter
    assert surest > 0.1  # the surest images are wrong about as often as the rest
