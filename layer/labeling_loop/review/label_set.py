"""The labels a run's review may offer, settled in the first state, before the model starts.

A review offers the labels the model predicted plus the run's own `labels`. The model predicts only
labels it was trained on, which are its project's datasets' labels (DescribeProjects, then
ListDatasetLabels per dataset, docs/aws-facts.md §1.7): so the label set is known before anything is
billed, and a run whose model predicts nothing still offers reviewers the right labels. Too many
labels, or none at all, or a per-label threshold of a label the review does not offer, fail here
(InvalidInput) instead of at Plan Review after the model ran.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import ValidationError

from labeling_loop.kernel.aws_clients import error_code
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.run_config import RunConfig

if TYPE_CHECKING:
    from types_boto3_rekognition import RekognitionClient

logger = logging.getLogger(__name__)

# A dataset being created or updated cannot be listed yet (ListDatasetLabels' errors): its labels
# are left out, the others still count.
_DATASET_BUSY = frozenset({"ResourceInUseException", "ResourceNotReadyException"})


def project_labels(rekognition: RekognitionClient, project_name: str) -> list[str]:
    """Every label of the project's datasets (train and test), sorted; [] when it has none."""
    found = rekognition.describe_projects(ProjectNames=[project_name])["ProjectDescriptions"]
    if not found:
        raise InvalidInput(
            f"projectVersionArn: no Custom Labels project named {project_name!r} in this region"
        )
    labels: set[str] = set()
    for dataset in found[0].get("Datasets") or []:
        paginator = rekognition.get_paginator("list_dataset_labels")
        try:
            for page in paginator.paginate(DatasetArn=dataset["DatasetArn"]):
                labels.update(d["LabelName"] for d in page.get("DatasetLabelDescriptions", []))
        except ClientError as error:
            if error_code(error) not in _DATASET_BUSY:
                raise
            logger.warning("dataset not readable yet", extra={"dataset": dataset["DatasetArn"]})
    return sorted(labels)


def with_project_labels(rekognition: RekognitionClient, config: RunConfig) -> RunConfig:
    """`config` whose `labels` are its own plus its model's project's: every label the review can
    need. InvalidInput, naming `labels`, when there are none or more than `maxLabelsPerJob`."""
    from_project = project_labels(rekognition, config.project_name)
    labels = sorted(set(config.labels) | set(from_project))
    if not labels:
        raise InvalidInput(
            f"labels: the input names none and the datasets of project {config.project_name!r} have "
            'none, so reviewers would have nothing to choose from; name them (e.g. "labels": ["cat", "dog"])'
        )
    if len(labels) > config.maxLabelsPerJob:
        raise InvalidInput(
            f"labels: the review would offer {len(labels)} labels (the input's {len(config.labels)} and "
            f"the {len(from_project)} of project {config.project_name!r}), more than maxLabelsPerJob "
            f"({config.maxLabelsPerJob}); raise maxLabelsPerJob (at most 50) or use a model with fewer labels"
        )
    unknown = sorted(set(config.autoAcceptConfidenceByLabel) - set(labels))
    if unknown:
        offered = ", ".join(repr(label) for label in labels[:10]) + (" ..." if len(labels) > 10 else "")
        raise InvalidInput(
            f"autoAcceptConfidenceByLabel: {', '.join(repr(label) for label in unknown[:5])} "
            f"{'is not a label' if len(unknown) == 1 else 'are not labels'} this run's review offers "
            f"({offered}); a threshold of a label no prediction carries would never apply"
        )
    try:
        return RunConfig.model_validate({**config.model_dump(), "labels": labels})
    except ValidationError as error:  # a dataset label our review UIs cannot show
        problem = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidInput(
            f"labels: project {config.project_name!r} has a label the review cannot offer: {problem}"
        ) from None
