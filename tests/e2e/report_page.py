"""report.html as a person sees it: opened in headless Chromium with the network off (as the S3
console's Open shows the one object), read once painted, every chart checked in the DOM against the
report.json it was drawn from, and captured as a full-page screenshot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import browser
from PIL import Image

CHARTS_JS = """[...document.querySelectorAll('svg.chart')].map(s => {
  const r = s.getBoundingClientRect();
  const figure = s.closest('figure');
  return {
    kind: s.dataset.chart,
    title: s.querySelector(':scope > title')?.textContent || '',
    desc: s.querySelector(':scope > desc')?.textContent || '',
    role: s.getAttribute('role'),
    width: r.width, height: r.height,
    points: [...s.querySelectorAll('.point')].map(p => p.querySelector('title')?.textContent || ''),
    kept: s.querySelectorAll('.bar.kept').length,
    bars: s.querySelectorAll('.bar').length,
    recommended: s.querySelectorAll('.recommended').length,
    tableRows: figure ? figure.querySelectorAll('details table tr').length - 1 : 0,
  };
})"""


def open_offline(page: browser.Chromium, html: str, path: Path) -> None:
    """Write the page, open it with the network off, and wait until it is painted: loaded, fonts
    ready, every image decoded, two animation frames drawn."""
    path.write_text(html)
    page.send("Page.enable", page=True)
    page.send("Network.enable", page=True)
    page.send(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        page=True,
    )
    page.events.clear()
    page.send("Page.navigate", {"url": path.as_uri()}, page=True)
    page.wait_until_painted()


def requests_made(page: browser.Chromium) -> list[str]:
    """Every URL the page asked for beyond itself and its inline data."""
    sent = [e for e in page.events if e.get("method") == "Network.requestWillBeSent"]
    urls = [e["params"]["request"]["url"] for e in sent]
    return [u for u in urls if not u.startswith(("data:", "file:"))]


def publish_screenshot(image: Image.Image, name: str) -> None:
    """Into SCREENSHOTS_DIR (`make screenshots`), as a small palette PNG for the README."""
    target = os.environ.get("SCREENSHOTS_DIR")
    if target:
        image.convert("RGB").quantize(colors=32).save(Path(target) / name, optimize=True)


def _shown(counts: dict[str, list[int]]) -> int:
    return sum(counts["kept"]) + sum(counts["corrected"])


def check_charts(page: browser.Chromium, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every chart report.json calls for is on the page, drawn (a size on screen), titled,
    described, with one data point per figure (each with its numbers as its title) and the table
    of its numbers; returns what the page showed."""
    charts = page.evaluate(CHARTS_JS)
    kinds: dict[str, list[dict[str, Any]]] = {}
    for chart in charts:
        assert chart["role"] == "img" and chart["title"] and chart["desc"], chart
        assert chart["width"] > 100 and chart["height"] > 60, chart
        assert chart["tableRows"] > 0 and all(chart["points"]), chart
        kinds.setdefault(chart["kind"], []).append(chart)
    assert not [w for w in report.get("warnings") or [] if "could not be drawn" in w], report["warnings"]

    curves = {k: v for k, v in report["thresholds"]["byLabel"].items() if v.get("curve")}
    drawn = {c["title"].split(":")[0]: c for c in kinds.get("threshold", [])}
    assert set(drawn) == set(curves), (set(drawn), set(curves))
    for label, row in curves.items():
        assert len(drawn[label]["points"]) == len(row["curve"]) == drawn[label]["tableRows"]
        assert drawn[label]["recommended"] == (row["recommended"] is not None)

    histograms = report["confidenceHistograms"]
    shown = {k: v for k, v in histograms["byLabel"].items() if _shown(v)}
    drawn = {c["title"].split(":")[0]: c for c in kinds.get("histogram", [])}
    assert set(drawn) == set(shown) and shown, (set(drawn), set(shown))
    for label, counts in shown.items():
        assert drawn[label]["kept"] == len(histograms["edges"]) - 1 == len(counts["kept"])
        assert f"{_shown(counts)} predictions shown to people" in drawn[label]["desc"]

    if report.get("audit"):
        (audit,) = kinds["audit"]
        assert f"gate {report['gate']['decision']}" in audit["title"]
        assert audit["points"], audit
    else:
        assert "audit" not in kinds

    quality = report["quality"]
    (figures,) = kinds["quality"]
    tables = [quality["reviewedImages"], quality.get("wholeRun") or {}]
    expected = sum(
        1
        for table in tables
        for row in [table.get("overall"), *(table.get("byLabel") or {}).values()]
        if row
        for name in ("precision", "recall", "f1")
        if (row.get(name) or {}).get("value") is not None
    )
    assert len(figures["points"]) == expected

    comparison = (report.get("training") or {}).get("comparison") or {}
    if comparison.get("possible"):
        (compared,) = kinds["comparison"]
        assert len(compared["points"]) == 3
        assert f"{comparison['difference']['estimate']:+g}" in compared["desc"]
    else:
        assert "comparison" not in kinds

    (cost,) = kinds["cost"]
    lines = [k for k in ("inference", "review", "engine", "training", "people") if k in report["cost"]]
    assert cost["bars"] == len(lines)
    return charts
