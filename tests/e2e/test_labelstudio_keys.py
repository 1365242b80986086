"""Every S3 key a bucket can hold loads for Label Studio's reviewers, and every label name shows as
written: against the real Label Studio server, reading images from (moto's) S3 through its S3
storage, as a reviewer's browser fetches them (the task's image URL, then the redirect it answers)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import boto3
import labelstudio_fixtures  # tests/e2e is on sys.path (pytest rootdir-relative import)
import pytest
import requests
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.labelstudio import project as ls_project
from labeling_loop.review.labelstudio.client import LabelStudioClient
from labeling_loop.review.labelstudio.images import add_review_images
from moto import mock_aws
from PIL import Image

from localcloud.services.labelstudio.server import LabelStudioServer

pytestmark = [pytest.mark.e2e, pytest.mark.labelstudio]

labelstudio = labelstudio_fixtures.labelstudio
moto_s3_endpoint = labelstudio_fixtures.moto_s3_endpoint

REGION = "us-east-1"
IMAGES_BUCKET = "awkward-images"
OUTPUT_BUCKET = "awkward-output"
STORAGE = {"region": REGION, "endpoint_url": None}  # Label Studio's S3_ENDPOINT points at moto
# Keys S3 stores as they are (any UTF-8), each one a way a URL can go wrong.
AWKWARD_KEYS = {
    "question-mark": "photos/what?.jpg",
    "hash": "photos/#1 cat.jpg",
    "dot-dot-slash": "photos/../escaped.jpg",
    "line-break": "photos/two\nlines.jpg",
    "unicode": "photos/café ☕ 猫.jpg",
    "spaces": "photos/  spaced  out .jpg",
    "percent": "photos/100%25 sure %.jpg",
    "plus-and-ampersand": "photos/a+b&c=d.jpg",
    "trailing-space": "photos/end .jpg",
}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=IMAGES_BUCKET)
        client.create_bucket(Bucket=OUTPUT_BUCKET)
        yield client


def _jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (seed * 37 % 255, 90, 160)).save(buffer, "JPEG")
    return buffer.getvalue()


def _review(
    s3: Any, ls: LabelStudioClient, run_id: str, refs: list[str], labels: list[str]
) -> dict[str, Any]:
    layout = RunLayout.for_run(S3Uri(OUTPUT_BUCKET, "runs/"), run_id)
    tasks = [
        {"source-ref": ref, "taskType": "detection", "image_size": {"width": 96, "height": 64, "depth": 3},
         "predictions": [{"label": labels[0], "confidence": 80.0,
                          "box": {"left": 5, "top": 5, "width": 20, "height": 20}}]}
        for ref in refs
    ]  # fmt: skip
    s3.put_object(
        Bucket=OUTPUT_BUCKET,
        Key=layout.review_tasks.key,
        Body="".join(json.dumps(task) + "\n" for task in tasks).encode(),
    )
    add_review_images(s3, layout)  # what Plan Review does for the Label Studio backend
    return ls_project.create_review(
        s3,
        ls,
        layout,
        ls_project.ProjectSettings(
            run_id=run_id,
            execution_arn=f"arn:aws:states:{REGION}:123456789012:execution:sm:{run_id}",
            task_type="detection",
            labels=labels,
            images_bucket=IMAGES_BUCKET,
            images_prefix="photos/",
            s3_storage=STORAGE,
            title=ls_project.review_title(run_id),
        ),
    )


def _fetch_as_a_browser(ls: LabelStudioClient, url: str) -> requests.Response:
    """What a reviewer's browser does with the task's image URL: GET it with the session, follow
    Label Studio's redirect to the presigned URL."""
    first = requests.get(
        url, headers={"Authorization": ls._authorization()}, allow_redirects=False, timeout=10
    )
    if first.status_code not in (301, 302, 303, 307):
        return first
    return requests.get(urljoin(url, first.headers["Location"]), timeout=10)


def test_every_key_a_bucket_can_hold_loads_for_reviewers(s3: Any, labelstudio: LabelStudioServer) -> None:
    # GIVEN images under keys with ?, #, ../, a line break, unicode, spaces, % and + in them
    images = {}
    for seed, key in enumerate(AWKWARD_KEYS.values()):
        ref = f"s3://{IMAGES_BUCKET}/{key}"
        images[ref] = _jpeg(seed)
        s3.put_object(Bucket=IMAGES_BUCKET, Key=key, Body=images[ref], ContentType="image/jpeg")
    ls = LabelStudioClient(labelstudio.url, labelstudio.token)
    # WHEN their review is created
    state = _review(s3, ls, "awkward-keys", list(images), ["cat"])
    # THEN each task's image URL, fetched as a reviewer's browser fetches it, serves that image's bytes
    failures = {}
    tasks = ls.get("/api/tasks/", {"project": state["projectId"], "fields": "all"})["tasks"]
    assert len(tasks) == len(images)
    for listed in tasks:
        task = ls.get(f"/api/tasks/{listed['id']}/")
        ref = ls.get(f"/api/tasks/{listed['id']}/", {"resolve_uri": "false"})["data"]["source_ref"]
        response = _fetch_as_a_browser(ls, urljoin(labelstudio.url, task["data"]["image"]))
        if response.status_code != 200 or response.content != images[ref]:
            failures[ref] = (response.status_code, response.url, response.content[:80])
    assert sorted(failures) == [], failures
