"""Emulated Custom Labels datasets and training: CreateDataset, DescribeDataset, UpdateDatasetEntries,
ListDatasetLabels, CreateProjectVersion (docs/aws-facts.md §1.7, §1.8), mixed into
CustomLabelsEmulator.

- Dataset statuses are the API's (DatasetStatus): CREATE_IN_PROGRESS -> CREATE_COMPLETE,
  UPDATE_IN_PROGRESS -> UPDATE_COMPLETE, after `dataset_latency_s`; UpdateDatasetEntries while one is
  in progress answers ResourceInUseException (§1.7); a line whose source-ref is in the dataset
  replaces it. A blob over 5,242,880 bytes (botocore's GroundTruthBlob max) is a ValidationException.
- ListDatasetLabels answers the labels the dataset declares (a registered model's, see `service`)
  and those its entries use, with the entries' counts, a page at a time.
- A version goes TRAINING_IN_PROGRESS -> TRAINING_COMPLETED (or TRAINING_FAILED with a
  StatusMessage, fault `fail_training`) after `training_latency_s`.
- What training learns (an emulator choice; AWS publishes no such model): a new version is as good
  as the labels it was given, whatever version it started from. Its training labels are compared
  with the ground truth (boxes matched by label at IoU 0.5, image-level labels by name): `correct`
  labels, true objects the labels `missed`, label boxes that are `wrong`. Its noise scale (which
  multiplies the configured misses, false positives and box jitter, `TrainedModel.noise_scale`) is

      labels_halving_noise / (labels_halving_noise + correct)          what it learned
      + (missed share + wrong share) / (miss_rate + false_positive_rate)  what it was taught wrong

  where missed share = missed / (correct + missed) and wrong share = wrong / (correct + wrong): more
  correct labels make it better, labels that disagree with the truth make it worse (a model taught
  that missed objects are background misses them; one taught wrong boxes predicts them), so a
  version trained on careless reviews comes out worse than the one it replaces. Capped so that no
  rate passes 0.9. Images the emulator has no truth for are not judged.
- Evaluation (`results`): the version's predictions on its test images, scored at IoU 0.5 and the
  assumed threshold, written as the testing and training snapshots and the summary file under its
  OutputConfig; the F1 described is the snapshot's. The test images are the TEST dataset's; with
  only a TRAIN dataset, a temporary 20 % split of it made for this training (TestingData.AutoCreate,
  §1.9), drawn anew by each training, and the training uses the other 80 %.

Emulator choices where AWS documents nothing: a version name already used in the project answers
ResourceInUseException; CreateProjectVersion on a project without datasets (and without
TrainingData/TestingData) answers InvalidParameterException; the manifest of CreateDataset is read at
the call (an unreadable one answers InvalidS3ObjectException).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from labeling_loop.kernel.geometry import iou_of_dicts

from localcloud.data.truth import Truth, load_truth
from localcloud.services.base import ServiceError, page
from localcloud.services.custom_labels import results
from localcloud.services.custom_labels.model import CustomLabelsConfig, TaskType

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

    from localcloud.services.custom_labels.service import _Version

DATASET_FIELDS = (
    "CreationTimestamp",
    "DatasetType",
    "DatasetArn",
    "Status",
    "StatusMessage",
    "StatusMessageCode",
)
MAX_BLOB = 5_242_880
TRAINING, TRAINED, TRAINING_FAILED = "TRAINING_IN_PROGRESS", "TRAINING_COMPLETED", "TRAINING_FAILED"


@dataclass
class Dataset:
    arn: str
    project: str
    kind: str  # TRAIN | TEST
    created: datetime
    status: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # source-ref -> manifest line
    labels: set[str] = field(default_factory=set)  # declared labels, besides those entries use
    transition_at: float | None = None
    updated: datetime | None = None

    def description(self) -> dict[str, Any]:
        truths = self.truths()
        labeled = sum(1 for t in truths.values() if t.labels)
        return {
            "CreationTimestamp": self.created,
            "LastUpdatedTimestamp": self.updated or self.created,
            "Status": self.status,
            "StatusMessage": "The dataset is ready." if self.status.endswith("COMPLETE") else "In progress.",
            "StatusMessageCode": "SUCCESS",
            "DatasetStats": {
                "LabeledEntries": labeled,
                "TotalEntries": len(self.entries),
                "TotalLabels": len({label for t in truths.values() for label in t.labels}),
                "ErrorEntries": 0,
            },
        }

    def truths(self) -> dict[str, Truth]:
        return load_truth(self.entries.values(), "s3://unused/")

    def label_descriptions(self) -> list[dict[str, Any]]:
        """ListDatasetLabels' rows: every label, with the images and boxes of the entries using it."""
        truths = self.truths().values()
        names = self.labels | {label for t in truths for label in t.labels}
        return [
            {
                "LabelName": name,
                "LabelStats": {
                    "EntryCount": sum(1 for t in truths if name in t.labels),
                    "BoundingBoxCount": sum(1 for t in truths for b in t.boxes if b.label == name),
                },
            }
            for name in sorted(names)
        ]

    def objects(self) -> int:
        """Labeled objects: boxes, or image labels of lines without boxes."""
        return sum(len(t.boxes) or len(t.labels) for t in self.truths().values())


def parse_lines(blob: bytes) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for number, raw in enumerate(blob.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError as error:
            raise ServiceError("InvalidParameterException", f"line {number} is not JSON: {error}") from None
        ref = line.get("source-ref") if isinstance(line, dict) else None
        if not isinstance(ref, str):
            raise ServiceError("InvalidParameterException", f"line {number} has no source-ref")
        entries[ref] = line
    return entries


def in_temporary_split(ref: str, version_name: str) -> bool:
    """The 20 % of a TRAIN dataset that one training tests on when the project has no TEST dataset."""
    return hashlib.sha256(f"{version_name}|{ref}".encode()).digest()[0] < 256 * 0.2


@dataclass
class TrainingRecord:
    """What CreateProjectVersion used, and, once the training ended, what it wrote (the members
    DescribeProjectVersions adds: EvaluationResult, TestingDataResult, TrainingDataResult)."""

    train: dict[str, dict[str, Any]]
    auto_split: bool
    described: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabelAgreement:
    """Training labels against the ground truth, in objects (boxes, or image-level labels)."""

    correct: int = 0
    missed: int = 0
    wrong: int = 0

    def add(self, labels: Truth, truth: Truth) -> None:
        if not truth.boxes and not labels.boxes:
            given, real = set(labels.labels), set(truth.labels)
            self.correct += len(given & real)
            self.missed += len(real - given)
            self.wrong += len(given - real)
            return
        sx = truth.width / labels.width if labels.width and truth.width else 1.0
        sy = truth.height / labels.height if labels.height and truth.height else 1.0
        free = [b.as_dict() for b in truth.boxes]
        for box in labels.boxes:
            drawn = {
                "label": box.label,
                "left": box.left * sx,
                "top": box.top * sy,
                "width": box.width * sx,
                "height": box.height * sy,
            }
            best = max(
                (t for t in free if t["label"] == box.label),
                key=lambda t: iou_of_dicts(drawn, t),
                default=None,
            )
            if best is not None and iou_of_dicts(drawn, best) >= 0.5:
                free.remove(best)
                self.correct += 1
            else:
                self.wrong += 1
        self.missed += len(free)

    def noise_scale(self, config: CustomLabelsConfig) -> float:
        """The trained version's noise scale (module docstring)."""
        learned = config.labels_halving_noise / (config.labels_halving_noise + self.correct)
        rates = config.miss_rate + config.false_positive_rate
        missed = self.missed / (self.correct + self.missed) if self.missed else 0.0
        wrong = self.wrong / (self.correct + self.wrong) if self.wrong else 0.0
        taught = (missed + wrong) / rates if rates > 0 else 0.0
        highest = max(config.miss_rate, config.false_positive_rate, config.box_jitter)
        return min(learned + taught, 0.9 / highest) if highest > 0 else learned + taught


def label_agreement(entries: dict[str, dict[str, Any]], truth: dict[str, Truth]) -> LabelAgreement:
    agreement = LabelAgreement()
    for ref, labels in load_truth(entries.values(), "s3://unused/").items():
        if ref in truth:
            agreement.add(labels, truth[ref])
    return agreement


class TrainingMixin:
    """Operations on datasets and training, mixed into CustomLabelsEmulator (service.py). The
    emulator's state and helpers it uses are annotated here, defined there."""

    _datasets: dict[str, Dataset]
    _lock: threading.RLock
    _clock: Callable[[], float]
    _s3: S3Client
    config: CustomLabelsConfig
    _projects: dict[str, tuple[str, datetime]]  # name -> (arn, created)
    _models: dict[str, _Version]
    project_arn: Callable[[str], str]
    _unique_ms: Callable[[], int]
    _add_version: Callable[[str, str, TaskType, float], str]

    # datasets ------------------------------------------------------------------------------

    def add_dataset(self, project_name: str, kind: str, lines: list[dict[str, Any]]) -> str:
        """Setup: a project's ready dataset (as the console or an earlier training left it), in
        place of its dataset of that kind (a project has at most one of each)."""
        with self._lock:
            project_arn = self.project_arn(project_name)
            replaced = self._find_dataset(project_name, kind)
            if replaced is not None:
                del self._datasets[replaced.arn]
            arn = self._dataset_arn(project_arn, kind)
            self._datasets[arn] = Dataset(
                arn,
                project_name,
                kind,
                datetime.now(UTC),
                "CREATE_COMPLETE",
                parse_lines(_jsonl(lines)),
                labels=set(replaced.labels) if replaced else set(),
            )
            return arn

    def declare_labels(self, project_name: str, labels: list[str]) -> None:
        """Setup: the project's TRAIN dataset (created, empty, if it has none) declares `labels`."""
        with self._lock:
            train = self._find_dataset(project_name, "TRAIN")
            if train is None:
                arn = self._dataset_arn(self.project_arn(project_name), "TRAIN")
                train = Dataset(arn, project_name, "TRAIN", datetime.now(UTC), "CREATE_COMPLETE")
                self._datasets[arn] = train
            train.labels.update(labels)

    def remove_datasets(self, project_name: str) -> None:
        """Setup: a project without datasets (trained before datasets existed, or they were deleted)."""
        with self._lock:
            for arn in [arn for arn, d in self._datasets.items() if d.project == project_name]:
                del self._datasets[arn]

    def _find_dataset(self, project_name: str, kind: str) -> Dataset | None:
        return next(
            (d for d in self._datasets.values() if d.project == project_name and d.kind == kind), None
        )

    def _dataset_arn(self, project_arn: str, kind: str) -> str:
        stamp = self._unique_ms()
        return project_arn.rsplit("/", 1)[0] + f"/dataset/{kind.lower()}/{stamp}"

    def project_datasets(self, project_name: str) -> list[dict[str, Any]]:
        rows = []
        for dataset in self._datasets.values():
            if dataset.project == project_name:
                self._advance_dataset(dataset)
                rows.append(
                    {
                        "CreationTimestamp": dataset.created,
                        "DatasetType": dataset.kind,
                        "DatasetArn": dataset.arn,
                        "Status": dataset.status,
                        "StatusMessage": "",
                        "StatusMessageCode": "SUCCESS",
                    }
                )
        return rows

    def _project_name(self, project_arn: str) -> str:
        for name, (arn, _) in self._projects.items():
            if arn == project_arn:
                return str(name)
        raise ServiceError("ResourceNotFoundException", "The requested resource was not found.")

    def _dataset(self, arn: str) -> Dataset:
        dataset = self._datasets.get(arn)
        if dataset is None:
            raise ServiceError("ResourceNotFoundException", "The requested dataset was not found.")
        self._advance_dataset(dataset)
        return dataset

    def _advance_dataset(self, dataset: Dataset) -> None:
        if dataset.transition_at is not None and self._clock() >= dataset.transition_at:
            dataset.transition_at = None
            dataset.status = dataset.status.replace("_IN_PROGRESS", "_COMPLETE")
            dataset.updated = datetime.now(UTC)

    def _create_dataset(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            name = self._project_name(params["ProjectArn"])
            kind = params["DatasetType"]
            if any(d.project == name and d.kind == kind for d in self._datasets.values()):
                raise ServiceError(
                    "ResourceAlreadyExistsException", f"The project already has a {kind} dataset."
                )
        entries: dict[str, dict[str, Any]] = {}
        source = params.get("DatasetSource") or {}
        if "GroundTruthManifest" in source:
            s3_object = source["GroundTruthManifest"]["S3Object"]
            try:
                body = self._s3.get_object(Bucket=s3_object["Bucket"], Key=s3_object["Name"])["Body"].read()
            except Exception as error:
                raise ServiceError(
                    "InvalidS3ObjectException", f"Unable to get object metadata from S3: {error}"
                ) from None
            entries = parse_lines(body)
        elif "DatasetArn" in source:
            entries = dict(self._dataset(source["DatasetArn"]).entries)
        with self._lock:
            arn = self._dataset_arn(params["ProjectArn"], kind)
            dataset = Dataset(arn, name, kind, datetime.now(UTC), "CREATE_IN_PROGRESS", entries)
            dataset.transition_at = self._clock() + self.config.dataset_latency_s
            self._datasets[arn] = dataset
        return {"DatasetArn": arn}

    def _describe_dataset(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"DatasetDescription": self._dataset(params["DatasetArn"]).description()}

    def _list_dataset_labels(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            rows = self._dataset(params["DatasetArn"]).label_descriptions()
        return page(rows, params, "DatasetLabelDescriptions")

    def _update_dataset_entries(self, params: dict[str, Any]) -> dict[str, Any]:
        blob = base64.b64decode(params["Changes"]["GroundTruth"])
        if len(blob) > MAX_BLOB:
            raise ServiceError(
                "ValidationException",
                "1 validation error detected: Value at 'changes.groundTruth' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_BLOB}",
            )
        entries = parse_lines(blob)
        with self._lock:
            dataset = self._dataset(params["DatasetArn"])
            if dataset.status.endswith("_IN_PROGRESS"):
                raise ServiceError("ResourceInUseException", f"The dataset is {dataset.status}.")
            dataset.entries.update(entries)
            dataset.status = "UPDATE_IN_PROGRESS"
            dataset.transition_at = self._clock() + self.config.dataset_latency_s
        return {}

    # training ------------------------------------------------------------------------------

    def _create_project_version(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            name = self._project_name(params["ProjectArn"])
            if any(m.project == name and m.version == params["VersionName"] for m in self._models.values()):
                raise ServiceError(
                    "ResourceInUseException", f"Version {params['VersionName']} already exists."
                )
            datasets = {d.kind: d for d in self._datasets.values() if d.project == name}
            if "TRAIN" not in datasets and "TrainingData" not in params:
                raise ServiceError(
                    "InvalidParameterException", "The project has no training dataset; specify TrainingData."
                )
            train = datasets["TRAIN"]
            self._advance_dataset(train)
            if train.status.endswith("_IN_PROGRESS"):
                raise ServiceError("ResourceInUseException", f"The training dataset is {train.status}.")
            base = max(
                (m for m in self._models.values() if m.project == name),
                key=lambda m: m.created,
            )
            auto_split = "TEST" not in datasets
            version_name = params["VersionName"]
            if auto_split:
                test = {r: line for r, line in train.entries.items() if in_temporary_split(r, version_name)}
            else:
                test = dict(datasets["TEST"].entries)
            used = {r: line for r, line in train.entries.items() if not auto_split or r not in test}
            scale = label_agreement(used, base.trained.truth).noise_scale(self.config)
            arn = self._add_version(name, version_name, base.trained.task_type, scale)
            version = self._models[arn]
            version.status = TRAINING
            version.history = [(TRAINING, self._clock())]
            version.transition_at = self._clock() + self.config.training_latency_s
            version.output_config = dict(params["OutputConfig"])
            version.failure = self.config.fail_training
            version.test_set = test
            version.training = TrainingRecord(used, auto_split)
            return {"ProjectVersionArn": arn}

    def training_results(self, version: _Version) -> dict[str, Any]:
        """DescribeProjectVersions' EvaluationResult, TestingDataResult and TrainingDataResult of a
        trained version, its snapshots and summary written once under its OutputConfig (`results`).
        A version registered with `add_model` is tested on its project's TEST dataset and trained
        on its TRAIN dataset as they are when it is first described; without a TEST dataset it has
        no results (F1Score 0.8, the emulator's historical figure)."""
        record = version.training
        if record is None:
            datasets = {d.kind: d for d in self._datasets.values() if d.project == version.project}
            if "TEST" not in datasets:
                return {"EvaluationResult": {"F1Score": 0.8}}
            version.test_set = dict(datasets["TEST"].entries)
            train = datasets.get("TRAIN")
            record = version.training = TrainingRecord(dict(train.entries) if train else {}, False)
        if not record.described:
            record.described = self._write_results(version, record)
        return record.described

    def _write_results(self, version: _Version, record: TrainingRecord) -> dict[str, Any]:
        config = self.config
        detection = version.trained.task_type == "detection"

        def predict(ref: str, width: int, height: int) -> list[dict[str, Any]]:
            return list(version.trained.predict(config, ref, width, height))

        test = results.evaluate(version.test_set, predict, config.assumed_threshold, detection)
        trained_on = results.evaluate(record.train, predict, config.assumed_threshold, detection)
        output = version.output_config or {
            "S3Bucket": "custom-labels-output",
            "S3KeyPrefix": f"{version.project}/",
        }
        bucket, prefix = output["S3Bucket"], output.get("S3KeyPrefix", "")
        folder = f"{prefix}{version.project}-{version.version}/"
        testing = results.write(self._s3, bucket, f"{folder}testing.manifest", test.lines)
        training = results.write(self._s3, bucket, f"{folder}training.manifest", trained_on.lines)
        summary = results.write(
            self._s3,
            bucket,
            f"{prefix}EvaluationSummary-{version.project}-{version.version}.json",
            document=results.summary_file(version.arn, test, len(trained_on.lines), config.assumed_threshold),
        )
        version.f1 = test.f1
        return {
            "EvaluationResult": {
                "F1Score": 0.0 if test.f1 is None else test.f1,
                "Summary": {"S3Object": summary},
            },
            "TestingDataResult": {
                "Input": {"Assets": [], "AutoCreate": record.auto_split},
                "Output": {"Assets": [results.manifest_asset(testing)], "AutoCreate": record.auto_split},
            },
            "TrainingDataResult": {
                "Input": {"Assets": []},
                "Output": {"Assets": [results.manifest_asset(training)]},
            },
        }


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()
