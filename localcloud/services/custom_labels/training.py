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
- What training learns: the new version predicts from the same ground truth as every emulated model,
  with its noise (misses, false positives, box jitter) scaled by
  `labels_halving_noise / (labels_halving_noise + labeled objects in the TRAIN dataset)` of the
  version it started from: more labels, fewer errors.
- Evaluation: F1 at IoU 0.5 and the assumed threshold over the TEST dataset, or, with only a TRAIN
  dataset, over a fixed 20 % of it (Custom Labels splits 80/20 then: md-create-dataset.html).

Emulator choices where AWS documents nothing: a version name already used in the project answers
ResourceInUseException; CreateProjectVersion on a project without datasets (and without
TrainingData/TestingData) answers InvalidParameterException; the manifest of CreateDataset is read at
the call (an unreadable one answers InvalidS3ObjectException).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localcloud.data.truth import Truth, load_truth
from localcloud.services.base import ServiceError, page

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


def in_test_split(ref: str) -> bool:
    return hashlib.sha256(ref.encode()).digest()[0] < 256 * 0.2


class TrainingMixin:
    """Operations on datasets and training. Needs the emulator's `_lock`, `_clock`, `_s3`, `config`,
    `_projects`, `_models` and `_add_version`."""

    _datasets: dict[str, Dataset]

    # datasets ------------------------------------------------------------------------------

    def add_dataset(self, project_name: str, kind: str, lines: list[dict[str, Any]]) -> str:
        """Setup: a project's ready dataset (as the console or an earlier training left it), in
        place of its dataset of that kind (a project has at most one of each)."""
        with self._lock:  # type: ignore[attr-defined]
            project_arn = self.project_arn(project_name)  # type: ignore[attr-defined]
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
        with self._lock:  # type: ignore[attr-defined]
            train = self._find_dataset(project_name, "TRAIN")
            if train is None:
                arn = self._dataset_arn(self.project_arn(project_name), "TRAIN")  # type: ignore[attr-defined]
                train = Dataset(arn, project_name, "TRAIN", datetime.now(UTC), "CREATE_COMPLETE")
                self._datasets[arn] = train
            train.labels.update(labels)

    def remove_datasets(self, project_name: str) -> None:
        """Setup: a project without datasets (trained before datasets existed, or they were deleted)."""
        with self._lock:  # type: ignore[attr-defined]
            for arn in [arn for arn, d in self._datasets.items() if d.project == project_name]:
                del self._datasets[arn]

    def _find_dataset(self, project_name: str, kind: str) -> Dataset | None:
        return next(
            (d for d in self._datasets.values() if d.project == project_name and d.kind == kind), None
        )

    def _dataset_arn(self, project_arn: str, kind: str) -> str:
        stamp = self._unique_ms()  # type: ignore[attr-defined]
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
        for name, (arn, _) in self._projects.items():  # type: ignore[attr-defined]
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
        if dataset.transition_at is not None and self._clock() >= dataset.transition_at:  # type: ignore[attr-defined]
            dataset.transition_at = None
            dataset.status = dataset.status.replace("_IN_PROGRESS", "_COMPLETE")
            dataset.updated = datetime.now(UTC)

    def _create_dataset(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:  # type: ignore[attr-defined]
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
                body = self._s3.get_object(Bucket=s3_object["Bucket"], Key=s3_object["Name"])["Body"].read()  # type: ignore[attr-defined]
            except Exception as error:
                raise ServiceError(
                    "InvalidS3ObjectException", f"Unable to get object metadata from S3: {error}"
                ) from None
            entries = parse_lines(body)
        elif "DatasetArn" in source:
            entries = dict(self._dataset(source["DatasetArn"]).entries)
        with self._lock:  # type: ignore[attr-defined]
            arn = self._dataset_arn(params["ProjectArn"], kind)
            dataset = Dataset(arn, name, kind, datetime.now(UTC), "CREATE_IN_PROGRESS", entries)
            dataset.transition_at = self._clock() + self.config.dataset_latency_s  # type: ignore[attr-defined]
            self._datasets[arn] = dataset
        return {"DatasetArn": arn}

    def _describe_dataset(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:  # type: ignore[attr-defined]
            return {"DatasetDescription": self._dataset(params["DatasetArn"]).description()}

    def _list_dataset_labels(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:  # type: ignore[attr-defined]
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
        with self._lock:  # type: ignore[attr-defined]
            dataset = self._dataset(params["DatasetArn"])
            if dataset.status.endswith("_IN_PROGRESS"):
                raise ServiceError("ResourceInUseException", f"The dataset is {dataset.status}.")
            dataset.entries.update(entries)
            dataset.status = "UPDATE_IN_PROGRESS"
            dataset.transition_at = self._clock() + self.config.dataset_latency_s  # type: ignore[attr-defined]
        return {}

    # training ------------------------------------------------------------------------------

    def _create_project_version(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:  # type: ignore[attr-defined]
            name = self._project_name(params["ProjectArn"])
            if any(m.project == name and m.version == params["VersionName"] for m in self._models.values()):  # type: ignore[attr-defined]
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
                (m for m in self._models.values() if m.project == name),  # type: ignore[attr-defined]
                key=lambda m: m.created,
            )
            scale = base.trained.noise_scale * (
                self.config.labels_halving_noise / (self.config.labels_halving_noise + train.objects())  # type: ignore[attr-defined]
            )
            arn = self._add_version(name, params["VersionName"], base.trained.task_type, scale)  # type: ignore[attr-defined]
            version = self._models[arn]  # type: ignore[attr-defined]
            version.status = TRAINING
            version.history = [(TRAINING, self._clock())]  # type: ignore[attr-defined]
            version.transition_at = self._clock() + self.config.training_latency_s  # type: ignore[attr-defined]
            version.output_config = dict(params["OutputConfig"])
            version.failure = self.config.fail_training  # type: ignore[attr-defined]
            version.test_set = dict(datasets["TEST"].entries) if "TEST" in datasets else {
                ref: line for ref, line in train.entries.items() if in_test_split(ref)
            }  # fmt: skip
            return {"ProjectVersionArn": arn}

    def evaluate(self, version: Any) -> float | None:
        """F1 of a version over its test set (IoU 0.5, the assumed threshold): the one it was trained
        with, or for a registered version its project's TEST dataset; None without one."""
        entries = version.test_set or next(
            (d.entries for d in self._datasets.values() if d.project == version.project and d.kind == "TEST"),
            {},
        )
        test = load_truth(entries.values(), "s3://unused/") if entries else {}
        tp = fp = fn = 0
        for ref, truth in test.items():
            if not truth.width or not truth.height:
                continue
            predicted = [
                p
                for p in version.trained.predict(self.config, ref, truth.width, truth.height)  # type: ignore[attr-defined]
                if p["Confidence"] >= self.config.assumed_threshold  # type: ignore[attr-defined]
            ]
            t, f, n = _match(predicted, truth)
            tp, fp, fn = tp + t, fp + f, fn + n
        if not test or tp + fp + fn == 0:
            return None
        return round(2 * tp / (2 * tp + fp + fn), 4)


def _match(predicted: list[dict[str, Any]], truth: Truth) -> tuple[int, int, int]:
    from labeling_loop.geometry import iou_of_dicts

    if not truth.boxes:  # image labels
        names = {p["Name"] for p in predicted}
        tp = len(names & set(truth.labels))
        return tp, len(names) - tp, len(set(truth.labels)) - tp
    boxes = [
        {
            "label": p["Name"],
            "left": p["Geometry"]["BoundingBox"]["Left"] * truth.width,
            "top": p["Geometry"]["BoundingBox"]["Top"] * truth.height,
            "width": p["Geometry"]["BoundingBox"]["Width"] * truth.width,
            "height": p["Geometry"]["BoundingBox"]["Height"] * truth.height,
        }
        for p in predicted
        if "Geometry" in p
    ]
    free = [b.as_dict() for b in truth.boxes]
    tp = 0
    for box in sorted(boxes, key=lambda b: b["label"]):
        best = max(
            (t for t in free if t["label"] == box["label"]), key=lambda t: iou_of_dicts(box, t), default=None
        )
        if best is not None and iou_of_dicts(box, best) >= 0.5:
            free.remove(best)
            tp += 1
    return tp, len(boxes) - tp, len(free)


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()
