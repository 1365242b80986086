"""The report's charts say what their numbers say: each data point is drawn where its value puts it
(above or below the target, left or right of 0, as long as its count), carries its numbers as a
text alternative, and the colours that tell series apart stay apart for colour-blind readers."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from labeling_loop.evaluation.measures import REVIEW
from labeling_loop.evaluation.thresholds import ThresholdCounts, recommend
from labeling_loop.finishing.report.charts.audit import audit_chart
from labeling_loop.finishing.report.charts.cost import cost_chart
from labeling_loop.finishing.report.charts.histograms import histogram_chart
from labeling_loop.finishing.report.charts.quality import comparison_chart, quality_chart
from labeling_loop.finishing.report.charts.svg import ConfidenceScale
from labeling_loop.finishing.report.charts.thresholds import threshold_chart

SVG = "{http://www.w3.org/2000/svg}"


def svg_of(html: str) -> ET.Element:
    match = re.search(r"<svg.*?</svg>", html, re.S)
    assert match, html[:300]
    return ET.fromstring(match.group(0))


def marks(root: ET.Element, css_class: str) -> list[ET.Element]:
    return [e for e in root.iter() if css_class in (e.get("class") or "").split()]


def title_of(element: ET.Element) -> str:
    found = element.find(f"{SVG}title")
    return "" if found is None else str(found.text)


def centre(element: ET.Element) -> tuple[float, float]:
    """A marker's centre: a circle's, or a polygon's corners' mean."""
    if element.get("cx") is not None:
        return float(element.get("cx", 0)), float(element.get("cy", 0))
    corners = [tuple(float(v) for v in p.split(",")) for p in str(element.get("points")).split()]
    return sum(c[0] for c in corners) / len(corners), sum(c[1] for c in corners) / len(corners)


def assert_accessible(html: str, kind: str) -> ET.Element:
    """A titled, described image with the table of its numbers."""
    root = svg_of(html)
    assert root.get("role") == "img" and root.get("data-chart") == kind
    ids = str(root.get("aria-labelledby")).split()
    texts = {e.get("id"): (e.text or "") for e in root.iter() if e.get("id") in ids}
    assert len(ids) == 2 and all(texts.get(i) for i in ids), ids
    assert "<summary>The numbers</summary><table>" in html
    return root


def threshold_row() -> dict[str, Any]:
    """A label whose images get wronger below 90: 200 images at 99 with 2 wrong, 100 at 92 with 4,
    100 at 80 with 20."""
    counts = ThresholdCounts()
    for score, n, wrong in ((99.0, 200, 2), (92.0, 100, 4), (80.0, 100, 20)):
        for i in range(n):
            counts.add("cat", REVIEW, score, i < wrong)
    return recommend(counts.cumulative("cat", {REVIEW: 1.0}, floor=50.0), 0.05)


def test_the_threshold_chart_draws_each_tested_step_its_band_the_target_and_the_recommendation() -> None:
    row = threshold_row()
    assert row["recommended"] is not None
    html = threshold_chart("t0", "cat", row)
    root = assert_accessible(html, "threshold")
    points = marks(root, "point")
    assert len(points) == len(row["curve"])
    by_threshold = {float(str(p.get("data-threshold"))): p for p in points}
    # each point says its threshold, its images and its error in words
    for step in row["curve"]:
        words = title_of(by_threshold[step["threshold"]])
        assert f">= {step['threshold']:g}: {step['images']} images" in words
        assert f"{step['errorRate'] * 100:.1f} % wrong" in words
    # wronger steps are drawn higher; steps under the target below its line
    (target,) = marks(root, "target")
    target_y = float(str(target.get("y1")))
    for a, b in itertools.combinations(row["curve"], 2):
        ya, yb = centre(by_threshold[a["threshold"]])[1], centre(by_threshold[b["threshold"]])[1]
        if a["errorRate"] != b["errorRate"]:
            assert (ya < yb) == (a["errorRate"] > b["errorRate"])
    for step in row["curve"]:
        assert (centre(by_threshold[step["threshold"]])[1] > target_y) == (step["errorRate"] < 0.05)
    # the band runs from the lower bound to the upper bound at every step, around the point
    (band,) = marks(root, "band")
    corners = [tuple(float(v) for v in p.split(",")) for p in str(band.get("points")).split()]
    for step in row["curve"]:
        x, y = centre(by_threshold[step["threshold"]])
        ys = [cy for cx, cy in corners if abs(cx - x) < 0.06]
        assert len(ys) == 2 and min(ys) <= y <= max(ys), (step, ys, y)
    # the recommendation is marked where its step is
    (recommended,) = marks(root, "recommended")
    assert abs(float(str(recommended.get("x1"))) - centre(by_threshold[row["recommended"]])[0]) < 0.06
    assert f"Recommended: {row['recommended']:g}" in html


def test_a_label_with_no_tested_threshold_has_no_chart_and_one_without_a_recommendation_no_mark() -> None:
    assert (
        threshold_chart("t0", "cat", {"target": 0.05, "recommended": None, "reason": "few", "curve": []})
        == ""
    )
    counts = ThresholdCounts()
    for i in range(300):
        counts.add("dog", REVIEW, 95.0, i % 5 == 0)  # 20 % wrong everywhere
    row = recommend(counts.cumulative("dog", {REVIEW: 1.0}, floor=50.0), 0.05)
    html = threshold_chart("t1", "dog", row)
    assert not marks(svg_of(html), "recommended") and "No threshold: " in html


def test_the_confidence_axis_is_stretched_toward_100_and_its_ticks_do_not_collide() -> None:
    scale = ConfidenceScale(60.0, 100.0, 0.0, 400.0)
    assert scale(60) == 0 and scale(100) == 400
    assert scale(99) - scale(98) > scale(70) - scale(60) > 0  # a point near 100 is wider than ten far off
    ticks = scale.ticks()
    assert ticks[-1] == 100 and all(60 <= t <= 100 for t in ticks)
    assert all(scale(b) - scale(a) >= 26 for a, b in itertools.pairwise(ticks))


def test_the_histogram_stacks_kept_and_corrected_predictions_to_their_counts() -> None:
    counts = {"kept": [0, 2, 5, 40], "corrected": [3, 2, 1, 0]}
    html = histogram_chart("h0", "cat", counts, [80, 85, 90, 95, 100], recommended=96.5)
    root = assert_accessible(html, "histogram")
    kept, corrected = marks(root, "kept"), marks(root, "corrected")
    assert [int(str(e.get("data-count"))) for e in kept] == counts["kept"]
    assert [int(str(e.get("data-count"))) for e in corrected] == counts["corrected"]
    # heights in proportion to the counts, corrected stacked on kept
    unit = float(str(kept[3].get("height"))) / 40
    for k, c, n_k, n_c in zip(kept, corrected, counts["kept"], counts["corrected"], strict=True):
        assert float(str(k.get("height"))) == pytest.approx(n_k * unit, abs=0.11)
        assert float(str(c.get("height"))) == pytest.approx(n_c * unit, abs=0.11)
        assert float(str(c.get("y"))) + float(str(c.get("height"))) == pytest.approx(
            float(str(k.get("y"))), abs=0.11
        )
    assert "90-95: 5 kept, 1 corrected (17 % corrected)" in title_of(kept[2])
    assert marks(root, "recommended")
    # bins and counts that do not line up are refused (the report leaves the chart out and says so)
    with pytest.raises(ValueError):
        histogram_chart("h1", "cat", {"kept": [1], "corrected": [1, 2]}, [90, 95, 100])
    assert histogram_chart("h2", "cat", {"kept": [0, 0], "corrected": [0, 0]}, [90, 95, 100]) == ""


AUDIT = {
    "candidates": 108, "audited": 20, "reviewed": 20, "errors": 1, "errorRate": 0.05,
    "interval95": [0.0093, 0.2222], "wrongAutoAccepted95": [0, 23], "target": 0.05, "autoAcceptedImages": 88,
    "shippedErrorUpperBound": 0.2273,
    "secondWave": {"reviewed": 88, "wrong": 9, "predicted95": [0, 23], "withinPrediction": True},
}  # fmt: skip
HELD = {"decision": "review", "reason": "1 of 20 audit images were wrong"}


def test_the_audit_chart_puts_the_bound_against_the_target_and_names_the_gates_decision() -> None:
    html = audit_chart(AUDIT, HELD)
    root = assert_accessible(html, "audit")
    assert title_of(root).startswith("Audit of auto-accept: gate review, held: people reviewed them")
    (target,) = marks(root, "target")
    target_x = float(str(target.get("x1")))
    (audited,) = marks(root, "audited")
    (bound,) = marks(root, "bound")
    (second,) = marks(root, "second-wave")
    assert centre(audited)[0] == pytest.approx(target_x, abs=0.2)  # 5 % found, the target 5 %
    assert centre(bound)[0] > target_x and "above the target" in title_of(bound)
    assert centre(second)[0] > target_x  # 9 of 88: 10.2 %
    assert "22.7 %" in html and "second wave: 9 of 88 wrong" in html

    # a gate that shipped: the bound left of the target
    shipped = {
        **AUDIT,
        "errors": 0,
        "errorRate": 0.0,
        "interval95": [0.0, 0.03],
        "shippedErrorUpperBound": 0.031,
    }
    shipped.pop("secondWave")
    root = svg_of(audit_chart(shipped, {"decision": "ship", "reason": ""}))
    (bound,) = marks(root, "bound")
    (target,) = marks(root, "target")
    assert centre(bound)[0] < float(str(target.get("x1"))) and "within the target" in title_of(bound)
    # every candidate audited: nothing left to bound; no audit image answered: no point, the whole interval
    root = svg_of(audit_chart({**shipped, "autoAcceptedImages": 0}, {"decision": "nothing-to-ship"}))
    assert not marks(root, "bound") and marks(root, "audited")
    root = svg_of(audit_chart({**shipped, "reviewed": 0, "errorRate": None, "interval95": [0, 1]}, HELD))
    assert not marks(root, "audited") and marks(root, "bound")


def figure(value: float, low: float, high: float) -> dict[str, Any]:
    return {"value": value, "interval95": [low, high], "decimals": 2, "text": f"{value} ({low}-{high})"}


def test_quality_points_sit_at_their_values_with_one_per_label_measure_and_series() -> None:
    row = {
        "precision": figure(0.9, 0.87, 0.92),
        "recall": figure(0.81, 0.77, 0.84),
        "f1": figure(0.85, 0.82, 0.88),
    }
    weak = {"precision": figure(0.7, 0.6, 0.8), "recall": figure(0.5, 0.4, 0.6),
            "f1": {"value": None, "interval95": None, "decimals": None, "text": "n/a"}}  # fmt: skip
    quality = {
        "reviewedImages": {"overall": row, "byLabel": {"cat": row, "dog": weak}, "images": 200},
        "wholeRun": {"overall": row, "byLabel": {"cat": row, "dog": weak}},
    }
    html = quality_chart(quality)
    root = assert_accessible(html, "quality")
    points = marks(root, "point")
    assert len(points) == 3 * 3 * 2 - 2  # rows x measures x series, less dog's F1 (n/a) twice
    for measure in ("precision", "recall"):
        at = {p.get("data-label"): centre(p)[0] for p in points if p.get("data-measure") == measure}
        assert at["dog"] < at["cat"]  # lower values further left on the same panel
    panels = {
        m: [centre(p)[0] for p in points if p.get("data-measure") == m] for m in ("precision", "recall", "f1")
    }
    assert max(panels["precision"]) < min(panels["recall"]) and max(panels["recall"]) < min(panels["f1"])
    assert "dog, recall on the whole run: 0.5 (0.4-0.6)" in html
    # a run with nothing measured has no chart, and no error
    assert quality_chart({"reviewedImages": {"overall": {"f1": weak["f1"]}, "byLabel": {}}}) == ""


def test_the_comparison_chart_shows_the_difference_against_zero() -> None:
    comparison = {
        "possible": True, "testImages": 20,
        "f1Before": {"estimate": 0.94, "interval95": [0.9, 0.98]},
        "f1After": {"estimate": 0.90, "interval95": [0.85, 0.95]},
        "difference": {"estimate": -0.04, "interval95": [-0.09, 0.01]},
    }  # fmt: skip
    html = comparison_chart(comparison, {"promote": False})
    root = assert_accessible(html, "comparison")
    (zero,) = marks(root, "zero")
    (difference,) = marks(root, "difference")
    assert centre(difference)[0] < float(str(zero.get("x1")))
    assert "not shown to be better; not promoted" in html
    better = {**comparison, "difference": {"estimate": 0.05, "interval95": [0.01, 0.09]}}
    root = svg_of(comparison_chart(better, {"promote": True}))
    (zero,) = marks(root, "zero")
    (difference,) = marks(root, "difference")
    assert centre(difference)[0] > float(str(zero.get("x1")))


def test_the_cost_chart_draws_each_line_in_proportion_and_the_cost_per_correct_image() -> None:
    cost = {
        "inference": {"quantity": 0.5, "unit": "inference-unit hour", "usd": 2.0},
        "review": {"quantity": 100, "unit": "labeled object", "usd": 8.0},
        "engine": {"quantity": 60, "unit": "state transition", "usd": 0.0015},
        "totalUsd": 10.0015,
        "perCorrectImageUsd95": [0.1, 0.125],
    }
    html = cost_chart(cost)
    root = assert_accessible(html, "cost")
    bars = {e.get("data-line"): float(str(e.get("width"))) for e in marks(root, "bar")}
    assert set(bars) == {"inference", "review", "engine"}
    assert bars["review"] == pytest.approx(4 * bars["inference"], rel=0.01)
    assert title_of(root) == "Where the money went: $10.00 in total, $0.1000-$0.1250 per correct image"
    assert "review: $8.00 (80%)" in html


# Machado, Oliveira and Fernandes (2009), "A Physiologically-based Model for Simulation of Color Vision
# Deficiency", IEEE TVCG 15(6): linear-RGB matrices at severity 1.
DEFICIENCIES = {
    "protanopia": (
        (0.152286, 1.052583, -0.204868),
        (0.114503, 0.786281, 0.099216),
        (-0.003882, -0.048116, 1.051998),
    ),
    "deuteranopia": (
        (0.367322, 0.860646, -0.227968),
        (0.280085, 0.672501, 0.047413),
        (-0.011820, 0.042940, 0.968881),
    ),
    "tritanopia": (
        (1.255528, -0.076749, -0.178779),
        (-0.078411, 0.930809, 0.147602),
        (0.004733, 0.691367, 0.303900),
    ),
}


def _lab(colour: str, matrix: tuple[tuple[float, ...], ...] | None) -> tuple[float, float, float]:
    def linear(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    rgb = [linear(int(colour[i : i + 2], 16)) for i in (1, 3, 5)]
    if matrix:
        rgb = [min(1.0, max(0.0, sum(m * c for m, c in zip(row, rgb, strict=True)))) for row in matrix]
    r, g, b = rgb
    x, y, z = (
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    )

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _series_colours(root: ET.Element) -> set[str]:
    """The colours that mean something: not the greys of grids and text, not white."""
    found = {str(e.get(a)).upper() for e in root.iter() for a in ("fill", "stroke") if e.get(a)}
    return {
        c for c in found if re.fullmatch(r"#[0-9A-F]{6}", c) and c not in {"#DDDDDD", "#222222", "#FFFFFF"}
    }


def test_colours_that_tell_series_apart_stay_apart_for_colour_blind_readers() -> None:
    charts = [
        threshold_chart("t0", "cat", threshold_row()),
        histogram_chart("h0", "cat", {"kept": [1, 2], "corrected": [2, 1]}, [90, 95, 100], 96.0),
        audit_chart(AUDIT, HELD),
        # a gate that ships has no second wave
        audit_chart({**AUDIT, "shippedErrorUpperBound": 0.01, "secondWave": None}, {"decision": "ship"}),
        quality_chart({"reviewedImages": {"overall": {"f1": figure(0.8, 0.7, 0.9)}, "byLabel": {}},
                       "wholeRun": {"overall": {"f1": figure(0.8, 0.75, 0.85)}, "byLabel": {}}}),
        comparison_chart({"testImages": 20, "f1Before": {"estimate": 0.9, "interval95": [0.8, 1]},
                          "f1After": {"estimate": 0.9, "interval95": [0.8, 1]},
                          "difference": {"estimate": 0, "interval95": [-0.1, 0.1]}}, {}),
    ]  # fmt: skip
    for html in charts:
        root = svg_of(html)
        colours = _series_colours(root)
        assert len(colours) >= 2, colours
        for a, b in itertools.combinations(sorted(colours), 2):
            for name, matrix in DEFICIENCIES.items():
                # CIE76 distance: about 2 is just noticeable; 20 is plainly another colour
                distance = (
                    sum((p - q) ** 2 for p, q in zip(_lab(a, matrix), _lab(b, matrix), strict=True)) ** 0.5
                )
                assert distance >= 20, (root.get("data-chart"), a, b, name, round(distance, 1))
