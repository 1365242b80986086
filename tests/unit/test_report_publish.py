"""Writing the report never fails the run: an item of report.json that cannot be drawn in
report.html is shown as text or left out, with a warning in report.json (moto S3)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from labeling_loop.layout import RunLayout
from labeling_loop.report.publish import publish
from labeling_loop.s3_uri import S3Uri
from PIL import Image

BUCKET = "out-bucket"
LAYOUT = RunLayout.for_run(S3Uri(BUCKET, "runs"), "run1")
IMAGE = f"s3://{BUCKET}/images/a.jpg"


@pytest.fixture
def s3(moto_s3: Any) -> Any:
    moto_s3.create_bucket(Bucket=BUCKET)
    out = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(out, "JPEG")
    moto_s3.put_object(Bucket=BUCKET, Key="images/a.jpg", Body=out.getvalue())
    return moto_s3


def _report(disagreements: list[Any]) -> dict[str, Any]:
    return {
        "runId": "run1",
        "status": "SUCCEEDED",
        "counts": {"imagesListed": 1, "imagesReviewed": 1},
        "disagreements": disagreements,
        "warnings": ["an earlier warning"],
    }


def _written(s3: Any) -> tuple[dict[str, Any], str]:
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=LAYOUT.report.key)["Body"].read())
    html = s3.get_object(Bucket=BUCKET, Key=LAYOUT.report_html.key)["Body"].read().decode("utf-8")
    return report, html


def test_a_box_with_a_negative_width_is_drawn_as_the_box_it_spans(s3: Any) -> None:
    # GIVEN a disagreement whose reviewed box has a negative width (an edited answer)
    item = {
        "source-ref": IMAGE,
        "disagreements": 1,
        "predicted": [{"label": "cat", "confidence": 90.0, "left": 10, "top": 10, "width": 50, "height": 40}],
        "reviewed": [{"label": "cat", "left": 80, "top": 10, "width": -50, "height": 40}],
    }
    # WHEN the report is published THEN both files are written, the thumbnail included
    final = publish(s3, LAYOUT, _report([item]))
    report, html = _written(s3)
    assert report == final and report["warnings"] == ["an earlier warning"]
    assert 'src="data:image/jpeg;base64,' in html


@pytest.mark.parametrize(
    "item",
    [
        {"source-ref": IMAGE, "predicted": [{"label": "cat", "confidence": "high"}], "reviewed": []},
        {"source-ref": IMAGE, "predicted": [], "reviewed": [{"left": 1}]},
        {"no source-ref": True},
        {"source-ref": "not-an-s3-uri", "predicted": "boxes", "reviewed": None},
        {"source-ref": IMAGE, "reviewed": [{"label": "cat", "left": "nan", "top": None}]},
    ],
    ids=[
        "confidence-not-a-number",
        "box-without-label",
        "no-source-ref",
        "not-s3",
        "coordinates-not-numbers",
    ],
)
def test_an_item_that_cannot_be_shown_is_left_out_with_a_warning(s3: Any, item: dict[str, Any]) -> None:
    good = {"source-ref": IMAGE, "disagreements": 2, "predicted": [], "reviewed": []}
    # WHEN a report with one odd disagreement next to a good one is published
    final = publish(s3, LAYOUT, _report([item, good]))
    report, html = _written(s3)
    # THEN report.json and report.html are written; the good item is shown; the odd one is shown as
    # text, or left out with a warning that names it
    assert report == final and report["warnings"][0] == "an earlier warning"
    assert html.count("<figure>") >= 1 and "2 differences" in html
    if html.count("<figure>") == 1:
        assert any("not shown" in w for w in report["warnings"]), report["warnings"]
        assert "not shown" in html


def test_a_section_that_cannot_be_drawn_says_so_and_the_rest_is_shown(s3: Any) -> None:
    # GIVEN a report whose quality section holds something no table can show
    report = {**_report([]), "quality": {"reviewedImages": {"byLabel": "not a mapping"}}}
    publish(s3, LAYOUT, report)
    written, html = _written(s3)
    assert "could not be shown" in html and "<h2>Counts</h2>" in html
    assert any("quality section could not be shown" in w for w in written["warnings"])
