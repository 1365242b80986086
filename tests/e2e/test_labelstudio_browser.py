"""What a reviewer sees: a pre-annotated task opened in headless Chromium, logged in, shows the image
(through Label Studio's presigned S3 redirect) and the model's boxes as regions.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`, fds 3 and 4,
NUL-separated JSON): no websocket client or browser-driver package needed. The session cookie comes
from Label Studio's own login form, posted with `requests`."""

import base64
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import browser  # tests/e2e/browser.py: headless Chromium over DevTools, shared with the report test
import labelstudio_fixtures  # tests/e2e is on sys.path (pytest rootdir-relative import)
import pytest
import requests
from deployed_stack import execution_arn
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.labelstudio import project as ls_project
from labeling_loop.review.labelstudio.client import LabelStudioClient
from moto import mock_aws
from PIL import Image, ImageDraw

from localcloud.services.labelstudio.server import LabelStudioServer

pytestmark = [pytest.mark.e2e, pytest.mark.labelstudio, pytest.mark.browser]

# One server for the session, shared with the other Label Studio test module (see labelstudio_fixtures).
labelstudio = labelstudio_fixtures.labelstudio
moto_s3_endpoint = labelstudio_fixtures.moto_s3_endpoint
chromium = browser.chromium
Chromium = browser.Chromium

logger = logging.getLogger(__name__)
REGION = "us-east-1"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="browser-images")
        client.create_bucket(Bucket="browser-output")
        yield client


def _session_cookies(server: LabelStudioServer) -> dict[str, str]:
    """Log in through Label Studio's Django login form, as a person would."""
    session = requests.Session()
    session.get(f"{server.url}/user/login/", timeout=10).raise_for_status()
    answer = session.post(
        f"{server.url}/user/login/",
        data={
            "email": server.username,
            "password": server.password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{server.url}/user/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, f"login refused: {answer.status_code}"
    return session.cookies.get_dict()


def test_reviewer_sees_the_image_and_the_models_boxes(
    s3: Any, labelstudio: LabelStudioServer, chromium: Chromium, tmp_path: Path
) -> None:
    # GIVEN a review with one image and two predicted boxes; the label set has a third label
    picture = Image.new("RGB", (640, 480), (235, 235, 225))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((70, 100, 250, 210), fill=(200, 120, 40))
    draw.rectangle((410, 310, 490, 390), fill=(60, 60, 160))
    body = io.BytesIO()
    picture.save(body, "JPEG")
    s3.put_object(
        Bucket="browser-images", Key="shots/pet.jpg", Body=body.getvalue(), ContentType="image/jpeg"
    )
    layout = RunLayout.for_run(S3Uri("browser-output", "runs/"), "run-browser-1")
    task = {
        "source-ref": "s3://browser-images/shots/pet.jpg",
        "taskType": "detection",
        "image_size": {"width": 640, "height": 480, "depth": 3},
        "predictions": [
            {"label": "cat", "confidence": 91.0, "box": {"left": 64, "top": 96, "width": 192, "height": 120}},
            {
                "label": "dog",
                "confidence": 62.0,
                "box": {"left": 400, "top": 300, "width": 100, "height": 100},
            },
        ],
    }
    s3.put_object(Bucket="browser-output", Key=layout.review_tasks.key, Body=json.dumps(task).encode())
    ls = LabelStudioClient(labelstudio.url, labelstudio.token)
    state = ls_project.create_review(
        s3,
        ls,
        layout,
        ls_project.ProjectSettings(
            run_id="run-browser-1",
            execution_arn=execution_arn("run-browser-1"),
            task_type="detection",
            labels=["cat", "dog", "bird"],
            images_bucket="browser-images",
            images_prefix="shots/",
            s3_storage={"region": REGION, "endpoint_url": None},
            title=ls_project.review_title("run-browser-1"),
        ),
    )
    task_id = ls.get("/api/tasks/", {"project": state["projectId"]})["tasks"][0]["id"]

    # WHEN a logged-in reviewer opens the task
    for name, value in _session_cookies(labelstudio).items():
        chromium.send("Network.setCookie", {"name": name, "value": value, "url": labelstudio.url}, page=True)
    chromium.send("Page.enable", page=True)
    chromium.send("Page.navigate", {"url": f"{state['url']}?task={task_id}"}, page=True)
    regions: list[str] = []
    image_sizes: list[list[int]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        regions = (
            chromium.evaluate(
                "[...document.querySelectorAll("
                "'.lsf-tree__node_type_rectangleregion .lsf-outliner-item__title')]"
                ".map(e => e.innerText.trim())"
            )
            or []
        )
        image_sizes = (
            chromium.evaluate(
                "[...document.images].filter(i => i.complete).map(i => [i.naturalWidth, i.naturalHeight])"
            )
            or []
        )
        if len(regions) >= 2 and [640, 480] in image_sizes:
            break
        time.sleep(0.5)
    screenshot = tmp_path / "labelstudio-task.png"
    screenshot.write_bytes(
        base64.b64decode(chromium.send("Page.captureScreenshot", {"format": "png"}, page=True)["data"])
    )
    logger.info("screenshot of the labeling page: %s", screenshot)

    # THEN the model's two boxes are listed as regions, and the image loaded at its full size
    assert sorted(regions) == ["cat", "dog"], f"regions shown: {regions} (screenshot {screenshot})"
    assert [640, 480] in image_sizes, f"images loaded: {image_sizes} (screenshot {screenshot})"
    assert chromium.evaluate("document.querySelectorAll('canvas').length") >= 1  # boxes drawn on Konva


def test_label_names_are_shown_as_written(
    s3: Any, labelstudio: LabelStudioServer, chromium: Chromium, tmp_path: Path
) -> None:
    # GIVEN a label set with names Label Studio's editor would read as references to task data
    picture = Image.new("RGB", (320, 240), (235, 235, 225))
    body = io.BytesIO()
    picture.save(body, "JPEG")
    s3.put_object(
        Bucket="browser-images", Key="shots/odd.jpg", Body=body.getvalue(), ContentType="image/jpeg"
    )
    layout = RunLayout.for_run(S3Uri("browser-output", "runs/"), "run-browser-2")
    task = {
        "source-ref": "s3://browser-images/shots/odd.jpg",
        "taskType": "detection",
        "image_size": {"width": 320, "height": 240, "depth": 3},
        "predictions": [
            {
                "label": "${image}",
                "confidence": 91.0,
                "box": {"left": 30, "top": 40, "width": 100, "height": 80},
            },
        ],
    }
    s3.put_object(Bucket="browser-output", Key=layout.review_tasks.key, Body=json.dumps(task).encode())
    ls = LabelStudioClient(labelstudio.url, labelstudio.token)
    labels = ["${image}", "cat", "price $5"]
    state = ls_project.create_review(
        s3,
        ls,
        layout,
        ls_project.ProjectSettings(
            run_id="run-browser-2",
            execution_arn=execution_arn("run-browser-2"),
            task_type="detection",
            labels=labels,
            images_bucket="browser-images",
            images_prefix="shots/",
            s3_storage={"region": REGION, "endpoint_url": None},
            title=ls_project.review_title("run-browser-2"),
        ),
    )
    task_id = ls.get("/api/tasks/", {"project": state["projectId"]})["tasks"][0]["id"]
    # WHEN a logged-in reviewer opens the task
    for name, value in _session_cookies(labelstudio).items():
        chromium.send("Network.setCookie", {"name": name, "value": value, "url": labelstudio.url}, page=True)
    chromium.send("Page.enable", page=True)
    chromium.send("Page.navigate", {"url": f"{state['url']}?task={task_id}"}, page=True)
    regions: list[str] = []
    text = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        regions = (
            chromium.evaluate(
                "[...document.querySelectorAll("
                "'.lsf-tree__node_type_rectangleregion .lsf-outliner-item__title')]"
                ".map(e => e.innerText.trim())"
            )
            or []
        )
        text = chromium.evaluate("document.body.innerText") or ""
        if regions and all(label in text for label in labels):
            break
        time.sleep(0.5)
    screenshot = tmp_path / "labelstudio-labels.png"
    screenshot.write_bytes(
        base64.b64decode(chromium.send("Page.captureScreenshot", {"format": "png"}, page=True)["data"])
    )
    # THEN every label is offered as written, and the model's box shows its label as written
    missing = [label for label in labels if label not in text]
    assert not missing, f"labels not shown as written: {missing} (screenshot {screenshot})"
    assert "undefined" not in text, f"a label was read as a reference (screenshot {screenshot})"
    assert regions == ["${image}"], f"regions shown: {regions} (screenshot {screenshot})"
