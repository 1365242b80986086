"""Writing the report never fails the run: an item of report.json that cannot be drawn in
report.html is shown as text or left out, with a warning in report.json (moto S3)."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from labeling_loop.finishing.report.publish import publish
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
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


def _figures(value: float) -> dict[str, Any]:
    return {
        name: {"value": value, "interval95": [value - 0.05, value + 0.03], "decimals": 2, "text": f"{value}"}
        for name in ("precision", "recall", "f1")
    }


def _curve(*steps: tuple[float, int, float]) -> list[dict[str, Any]]:
    return [
        {"threshold": t, "images": n, "errorRate": e, "errorLowerBound": e / 2, "errorUpperBound": e + 0.02}
        for t, n, e in steps
    ]


def _full_report() -> dict[str, Any]:
    """Every section a chart is drawn from, as build_manifest and train_model write them."""
    return {
        **_report([]),
        "quality": {
            "iouThreshold": 0.5,
            "minConfidence": 50.0,
            "reviewedImages": {"overall": _figures(0.85), "byLabel": {"cat": _figures(0.8)}, "images": 80},
            "wholeRun": {"overall": _figures(0.86), "byLabel": {"cat": _figures(0.82)}},
        },
        "audit": {
            "candidates": 100,
            "audited": 60,
            "reviewed": 60,
            "errors": 0,
            "errorRate": 0.0,
            "interval95": [0.0, 0.03],
            "wrongAutoAccepted95": [0, 1],
            "target": 0.05,
            "autoAcceptedImages": 40,
            "shippedErrorUpperBound": 0.035,
        },
        "gate": {"decision": "ship", "reason": "within auditErrorTarget 0.05"},
        "thresholds": {
            "target": 0.05,
            "confidence": 0.95,
            "byLabel": {
                "cat": {
                    "recommended": 97.0,
                    "images": 70,
                    "errorRate": 0.0,
                    "errorUpperBound": 0.04,
                    "target": 0.05,
                    "curve": _curve((97.0, 70, 0.0), (90.0, 80, 0.05), (70.0, 95, 0.15)),
                },
                "dog": {
                    "recommended": None,
                    "reason": "the model must get better",
                    "target": 0.05,
                    "curve": _curve((95.0, 60, 0.1), (80.0, 70, 0.2)),
                },
            },
            "nextRunInput": {"autoAcceptConfidence": "off", "autoAcceptConfidenceByLabel": {"cat": 97.0}},
        },
        "confidenceHistograms": {
            "binWidth": 5,
            "minConfidence": 90.0,
            "edges": [90, 95, 100],
            "byLabel": {
                "cat": {"kept": [3, 50], "corrected": [2, 1]},
                "dog": {"kept": [4, 9], "corrected": [3, 2]},
            },
        },
        "cost": {
            "inference": {"quantity": 0.5, "unit": "inference-unit hour", "usd": 2.0},
            "review": {"quantity": 80, "unit": "labeled object", "usd": 6.4},
            "totalUsd": 8.4,
            "perCorrectImageUsd95": [0.084, 0.085],
        },
        "training": {
            "status": "TRAINING_COMPLETED",
            "decision": {"promote": False, "reason": "not shown to be better"},
            "comparison": {
                "possible": True,
                "testImages": 20,
                "f1Before": {"estimate": 0.9, "interval95": [0.85, 0.95]},
                "f1After": {"estimate": 0.92, "interval95": [0.88, 0.96]},
                "difference": {"estimate": 0.02, "interval95": [-0.02, 0.06]},
            },
        },
    }


def test_every_chart_is_drawn_from_the_reports_own_figures(s3: Any) -> None:
    publish(s3, LAYOUT, _full_report())
    report, html = _written(s3)
    assert report["warnings"] == ["an earlier warning"]
    kinds = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="(\w+)"', html)
    assert sorted(kinds) == sorted(
        ["quality", "audit", "threshold", "threshold", "histogram", "histogram", "cost", "comparison"]
    )
    # served as a web page from S3 (the console's Open shows it)
    head = s3.head_object(Bucket=BUCKET, Key=LAYOUT.report_html.key)
    assert head["ContentType"] == "text/html; charset=utf-8"
    assert "<h2>What people kept and corrected, by confidence</h2>" in html
    # self-contained: no script, nothing fetched
    assert "<script" not in html and 'href="http' not in html and 'src="http' not in html


def test_a_chart_that_cannot_be_drawn_is_left_out_with_a_warning_and_the_rest_is_shown(s3: Any) -> None:
    # GIVEN a report whose dog curve lacks its lower bounds (a report.json from an older version)
    report = _full_report()
    for step in report["thresholds"]["byLabel"]["dog"]["curve"]:
        del step["errorLowerBound"]
    publish(s3, LAYOUT, report)
    written, html = _written(s3)
    # THEN the cat's chart is drawn, the dog's is left out and a warning names it
    assert html.count('data-chart="threshold"') == 2  # the cat's figure and its SVG
    assert any("the threshold (dog) chart could not be drawn" in w for w in written["warnings"]), written
    assert "the threshold (dog) chart could not be drawn" in html
    assert html.count('data-chart="histogram"') == 4 and "<h2>Cost (estimate)</h2>" in html
