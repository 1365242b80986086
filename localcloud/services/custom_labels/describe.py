"""DescribeProjects and DescribeProjectVersions of the emulated Custom Labels service (docs/aws-facts.md
§1.3: newest first, paginated; EvaluationResult only for a trained version; §1.9: a trained
version's TestingDataResult, TrainingDataResult and EvaluationResult.Summary point at what its
training wrote, see `results`), mixed into CustomLabelsEmulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localcloud.services.base import ServiceError, page
from localcloud.services.custom_labels.training import TRAINED, TRAINING, TRAINING_FAILED

_STATUS_MESSAGES = {
    "STARTING": "The model is being started.",
    "RUNNING": "The model is running.",
    "FAILED": "The model failed to start.",
    "STOPPING": "The model is being stopped.",
    "STOPPED": "The model is stopped.",
    TRAINED: "The model is ready to run.",
    TRAINING: "The model is being trained.",
}


class DescribeMixin:
    """Needs the emulator's `_lock`, `_projects`, `_models`, `_advance`, `config`, `training_results`
    and `project_datasets` (annotated here, defined there)."""

    _lock: Any
    _projects: dict[str, tuple[str, Any]]
    _models: dict[str, Any]
    config: Any
    _advance: Callable[[Any], None]
    training_results: Callable[[Any], dict[str, Any]]
    project_datasets: Callable[[str], list[dict[str, Any]]]

    def _describe_projects(self, params: dict[str, Any]) -> dict[str, Any]:
        names = params.get("ProjectNames")
        features = params.get("Features")
        with self._lock:
            rows = [
                {
                    "ProjectArn": arn,
                    "CreationTimestamp": created,
                    "Status": "CREATED",
                    "Datasets": self.project_datasets(name),
                    "Feature": "CUSTOM_LABELS",
                }
                for name, (arn, created) in sorted(self._projects.items())
                if names is None or name in names
            ]
        if features is not None and "CUSTOM_LABELS" not in features:
            rows = []
        return page(rows, params, "ProjectDescriptions")

    def _describe_project_versions(self, params: dict[str, Any]) -> dict[str, Any]:
        project_arn = params["ProjectArn"]
        names = params.get("VersionNames")
        with self._lock:
            if project_arn not in {arn for arn, _ in self._projects.values()}:
                raise ServiceError("ResourceNotFoundException", "The requested resource was not found.")
            models = [m for m in self._models.values() if m.project_arn == project_arn]
            for model in models:
                self._advance(model)
            # docs/aws-facts.md §1.3: newest first.
            models.sort(key=lambda m: m.arn.rsplit("/", 1)[1], reverse=True)
            rows = [self._version_description(m) for m in models if names is None or m.version in names]
        return page(rows, params, "ProjectVersionDescriptions")

    def _version_description(self, model: Any) -> dict[str, Any]:
        description: dict[str, Any] = {
            "ProjectVersionArn": model.arn,
            "CreationTimestamp": model.created,
            "MinInferenceUnits": model.min_units,
            "Status": model.status,
            "StatusMessage": model.failure
            if model.status == TRAINING_FAILED and model.failure
            else _STATUS_MESSAGES.get(model.status, model.status),
            "OutputConfig": model.output_config
            or {"S3Bucket": "custom-labels-output", "S3KeyPrefix": f"{model.project}/"},
            "Feature": "CUSTOM_LABELS",
        }
        if model.status not in (TRAINING, TRAINING_FAILED):
            # Only a trained version has an evaluation (docs/aws-facts.md §1.3, §1.9).
            description["BillableTrainingTimeInSeconds"] = self.config.billable_training_seconds
            description["TrainingEndTimestamp"] = model.created
            description.update(self.training_results(model))
        if model.max_units is not None:
            description["MaxInferenceUnits"] = model.max_units
        return description
