"""The demo's report.html shows, not only tells (issue 23): `make demo` as a newcomer runs it (200
synthetic images, auto-accept with its audit, a second wave, the next version trained and
compared), its report opened in headless Chromium with the network off, every chart checked in the
DOM against report.json, and a full-page screenshot kept. The training run's report is checked the
same way in test_closing_the_loop.py, the thresholds acted on in test_decisions.py."""

from __future__ import annotations

import json
from pathlib import Path

import browser
import pytest
import report_page

from localcloud import cli

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
chromium = browser.chromium


def test_the_demos_report_shows_its_figures_as_charts(
    chromium: browser.Chromium, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the demo, run as `make demo` runs it
    out = tmp_path / "demo-out"
    code = cli.main(["demo", "--data", str(tmp_path / "demo-data"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / "report.json").read_text())
    assert report["audit"] and report["training"]["comparison"]["possible"], report.get("training")

    # WHEN its report.html is opened offline and painted
    report_page.open_offline(chromium, (out / "report.html").read_text(), tmp_path / "report.html")

    # THEN every chart report.json calls for is drawn, with its numbers, and nothing was fetched
    charts = report_page.check_charts(chromium, report)
    kinds = {c["kind"] for c in charts}
    assert kinds == {"quality", "audit", "threshold", "histogram", "cost", "comparison"}, kinds
    assert report_page.requests_made(chromium) == []
    # the audit's chart says what the run printed: the gate's decision and the second wave
    (audit,) = [c for c in charts if c["kind"] == "audit"]
    decision = report["gate"]["decision"]
    assert f"audit gate: {decision}" in printed and f"gate {decision}" in audit["title"]
    if report["audit"].get("secondWave"):
        second = report["audit"]["secondWave"]
        found = f"second wave: {second['wrong'] / second['reviewed'] * 100:.1f} % wrong"
        assert any(found in point for point in audit["points"]), audit["points"]
    image = chromium.screenshot(tmp_path / "report.png")
    assert image.width >= 1000 and image.height > 3000, image.size
