"""The review's label set is settled before the model starts: the input's labels plus the model's
project's datasets' labels (review/label_set.py), over a fake Rekognition that answers as the API
documents (DescribeProjects, ListDatasetLabels)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from fixtures_aws import REGION, FakeCustomLabels, ServiceError, make_config
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.review.label_set import project_labels, with_project_labels


@pytest.fixture
def rekognition(aws: SimpleNamespace) -> tuple[object, FakeCustomLabels]:
    client = boto3.client("rekognition", region_name=REGION)
    return client, FakeCustomLabels().attach(client)


def test_a_run_without_labels_offers_its_projects_labels(
    rekognition: tuple[object, FakeCustomLabels],
) -> None:
    client, fake = rekognition
    # GIVEN a console run started with `{}` (no labels), whose model may predict nothing at all
    config = make_config()
    assert config.labels == []
    # WHEN the first state settles the label set
    settled = with_project_labels(client, config)
    # THEN the review offers the labels of the model's project, read before anything is billed
    assert settled.labels == ["robin", "sparrow", "wren"]
    assert [op for op, _ in fake.calls] == ["DescribeProjects", "ListDatasetLabels"]


def test_the_inputs_labels_are_offered_too(rekognition: tuple[object, FakeCustomLabels]) -> None:
    client, _ = rekognition
    settled = with_project_labels(client, make_config(labels=["wren", "finch"]))
    assert settled.labels == ["finch", "robin", "sparrow", "wren"]


def test_no_label_anywhere_fails_before_the_model_starts(
    rekognition: tuple[object, FakeCustomLabels],
) -> None:
    client, fake = rekognition
    # GIVEN a project whose datasets have no labels, and an input that names none
    fake.dataset_labels = []
    # THEN the run fails in the first state, naming the field and how to fix it
    with pytest.raises(
        InvalidInput, match=r"^labels: the input names none and the datasets of project 'birds'"
    ):
        with_project_labels(client, make_config())


def test_more_labels_than_the_review_offers_fail_before_the_model_starts(
    rekognition: tuple[object, FakeCustomLabels],
) -> None:
    client, fake = rekognition
    # GIVEN a project of 12 labels and a review that offers at most 10
    fake.dataset_labels = [f"bird-{i}" for i in range(12)]
    # THEN the run fails in the first state (today's Plan Review check comes after the model ran)
    with pytest.raises(
        InvalidInput, match=r"^labels: the review would offer 12 labels .* maxLabelsPerJob \(10\)"
    ):
        with_project_labels(client, make_config(maxLabelsPerJob=10))


class BusyDataset(FakeCustomLabels):
    """A project whose dataset Rekognition cannot list right now (an update in progress)."""

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "ListDatasetLabels":
            raise ServiceError("ResourceInUseException", "The dataset is being updated")
        return super().respond(operation, params)


def test_a_dataset_being_updated_is_left_out(aws: SimpleNamespace) -> None:
    # GIVEN a dataset that cannot be listed now
    client = boto3.client("rekognition", region_name=REGION)
    BusyDataset().attach(client)
    # THEN its labels are left out (the input's still count), and nothing fails
    assert project_labels(client, "birds") == []
    assert with_project_labels(client, make_config(labels=["finch"])).labels == ["finch"]


def test_an_unknown_project_is_named(rekognition: tuple[object, FakeCustomLabels]) -> None:
    client, _ = rekognition
    with pytest.raises(InvalidInput, match=r"^projectVersionArn: no Custom Labels project named 'owls'"):
        project_labels(client, "owls")


def test_a_threshold_for_a_label_the_review_does_not_offer_is_refused(
    rekognition: tuple[object, FakeCustomLabels],
) -> None:
    client, _ = rekognition
    # GIVEN per-label thresholds, one of them for a label of neither the input nor the project (a typo)
    config = make_config(
        labels=["finch"], autoAcceptConfidenceByLabel={"wren": 80.0, "finch": 90.0, "wern": 85.0}
    )
    # THEN the first state refuses it, naming the field and the label
    with pytest.raises(
        InvalidInput, match=r"^autoAcceptConfidenceByLabel: 'wern' is not a label this run's review"
    ):
        with_project_labels(client, config)
    # AND thresholds of the project's and the input's labels are accepted
    settled = with_project_labels(
        client, make_config(labels=["finch"], autoAcceptConfidenceByLabel={"wren": 80.0})
    )
    assert settled.autoAcceptConfidenceByLabel == {"wren": 80.0}
