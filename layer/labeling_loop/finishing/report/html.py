"""report.html: the run report for people, beside report.json, self-contained (inline CSS, images as
`data:` URIs), so the S3 console's Open shows it without any other file or network access."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from html import escape
from typing import Any

from labeling_loop.finishing.report.charts.audit import audit_chart
from labeling_loop.finishing.report.charts.cost import cost_chart
from labeling_loop.finishing.report.charts.histograms import histogram_chart
from labeling_loop.finishing.report.charts.quality import comparison_chart, quality_chart
from labeling_loop.finishing.report.charts.thresholds import threshold_chart
from labeling_loop.finishing.report.colours import PREDICTED_COLOUR, REVIEWED_COLOUR

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.warn{background:#fff4e0;border-left:4px solid #e68a00;padding:.4em .8em;margin:.3em 0}
.ok{color:#06713a}.bad{color:#b00020}.grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #ddd;padding:6px;width:372px}figcaption{font-size:.8em;word-break:break-all}
code,pre{background:#f6f6f6;padding:.1em .3em}.key{display:inline-block;width:1em;height:.7em;margin:0 .3em}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.charts>figure.chart{width:420px;margin:0}figure.chart{width:auto;max-width:100%;margin:.8em 0;border:none;padding:0}
figure.chart figcaption{font-size:.9em;word-break:normal;max-width:900px;margin-bottom:4px}
svg.chart{display:block;max-width:100%;height:auto;font-family:inherit}details{font-size:.85em}
@media print{figure.chart{break-inside:avoid}details{display:none}}
"""


def _rgb(colour: tuple[int, int, int]) -> str:
    return "rgb({},{},{})".format(*colour)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(row: Mapping[str, Any] | None, name: str) -> str:
    """`0.87 (0.84-0.90)`: a quality figure with its 95 % interval, at the precision it has."""
    figure = (row or {}).get(name)
    return str(figure.get("text")) if isinstance(figure, Mapping) else "–"


def _chart(name: str, draw: Callable[[], str], problems: list[str]) -> str:
    """A chart, or nothing and a warning: a chart that cannot be drawn never costs the report (the
    tables beside it show the same figures)."""
    try:
        return draw()
    except Exception as error:
        problems.append(f"report.html: the {name} chart could not be drawn ({type(error).__name__}: {error})")
        return ""


def _quality(report: Mapping[str, Any], problems: list[str]) -> str:
    quality = report.get("quality") or {}
    reviewed = quality.get("reviewedImages") or {}
    whole = quality.get("wholeRun")
    labels = sorted(set(reviewed.get("byLabel") or {}) | set((whole or {}).get("byLabel") or {}))
    rows = []
    for name, r, w in [("all labels", reviewed.get("overall"), (whole or {}).get("overall"))] + [
        (label, (reviewed.get("byLabel") or {}).get(label), (whole or {}).get("byLabel", {}).get(label))
        for label in labels
    ]:
        rows.append([name, *(_figure(r, f) for f in ("precision", "recall", "f1")),
                     *(_figure(w, f) for f in ("precision", "recall", "f1"))])  # fmt: skip
    note = escape(str(quality.get("wholeRunNote", "")))
    return (
        "<h2>Model quality</h2>"
        f"<p>Each figure with its 95 % interval, printed to the digits the interval supports. IoU "
        f"{_fmt(quality.get('iouThreshold'))}, predictions at minConfidence {_fmt(quality.get('minConfidence'))}, "
        f"{_fmt(reviewed.get('images'))} reviewed images (about the model on images like them). Whole run: {note}.</p>"
        + _table(
            ["label", "precision (reviewed)", "recall (reviewed)", "F1 (reviewed)", "precision (whole run)",
             "recall (whole run)", "F1 (whole run)"],
            rows,
        )
        + (_chart("quality", lambda: quality_chart(quality), problems) if reviewed.get("images") else "")
    )  # fmt: skip


_DECISIONS = {
    "ship": ("ok", "shipped: the audit vouches for them"),
    "nothing-to-ship": ("ok", "nothing shipped unchecked: people reviewed every candidate"),
    "review": ("bad", "held: people reviewed them in a second wave"),
    "defer": ("bad", "held: deferred to the next run"),
}


def _audit(report: Mapping[str, Any], problems: list[str]) -> str:
    audit = report.get("audit")
    if not audit:
        counts = report.get("counts") or {}
        if not counts.get("imagesReviewed") and not counts.get("imagesAutoAccepted"):
            return "<h2>Auto-accept audit</h2><p>No image was reviewed or auto-accepted in this run.</p>"
        return "<h2>Auto-accept audit</h2><p>No image was a candidate for auto-accept (auto-accept off, or no image qualified): people reviewed every image.</p>"
    low, high = audit.get("interval95") or [None, None]
    wrong = audit.get("wrongAutoAccepted95") or [None, None]
    gate = report.get("gate") or {}
    css, outcome = _DECISIONS.get(str(gate.get("decision")), ("", str(gate.get("decision"))))
    kinds = audit.get("errorKinds") or {}
    second = audit.get("secondWave")
    check = (
        f"<p>The second wave reviewed {_fmt(second.get('reviewed'))} of them and found {_fmt(second.get('wrong'))} "
        f"wrong; the audit had predicted {_fmt(second['predicted95'][0])}-{_fmt(second['predicted95'][1])}.</p>"
        if second
        else ""
    )
    return (
        "<h2>Auto-accept audit and gate</h2>"
        f"<p>{_fmt(audit.get('audited'))} of {_fmt(audit.get('candidates'))} auto-accept candidates, drawn at random, "
        f"were reviewed anyway; {_fmt(audit.get('errors'))} of the {_fmt(audit.get('reviewed'))} answered were wrong "
        f"(box tolerance IoU {_fmt(report.get('work', {}).get('boxTolerance'))}: {_fmt(kinds.get('missed'))} missed objects, "
        f"{_fmt(kinds.get('extra'))} extra boxes, {_fmt(kinds.get('wrongLabel'))} wrong labels, "
        f"{_fmt(kinds.get('outOfTolerance'))} boxes out of tolerance). Candidates' error rate "
        f"{_fmt(audit.get('errorRate'))}, exact 95 % interval [{_fmt(low)}, {_fmt(high)}]; wrong among the "
        f"{_fmt(audit.get('autoAcceptedImages'))} not audited: {_fmt(wrong[0])}-{_fmt(wrong[1])} (95 %).</p>"
        f'<p>Gate: their error rate is at most {_fmt(audit.get("shippedErrorUpperBound"))} (95 % upper bound) against '
        f'auditErrorTarget {_fmt(audit.get("target"))}: <span class="{css}">{escape(outcome)}</span>. '
        f"{escape(str(gate.get('reason', '')))}</p>" + check
        + _chart("audit", lambda: audit_chart(audit, gate), problems)
    )  # fmt: skip


_THRESHOLD_CHARTS = (
    "<p>In the charts, each point is a tested threshold: the images people reviewed whose least confident "
    "prediction of the label is at or above it, and the share of them that were wrong (missed objects "
    "included), with its exact lower and upper bounds (the band). The threshold recommended is the lowest "
    "whose upper bound the test showed under the target.</p>"
)


def _thresholds(report: Mapping[str, Any], problems: list[str]) -> str:
    thresholds = report.get("thresholds") or {}
    by_label = thresholds.get("byLabel") or {}
    charts = [
        _chart(
            f"threshold ({label})",
            partial(threshold_chart, f"threshold-{i}", label, by_label[label]),
            problems,
        )
        for i, label in enumerate(sorted(by_label))
    ]
    rows = [
        [label, row.get("recommended"), row.get("images"), row.get("errorRate"), row.get("errorUpperBound"),
         row.get("reason", "")]
        for label, row in sorted((thresholds.get("byLabel") or {}).items())
    ]  # fmt: skip
    suggestion = json.dumps(thresholds.get("nextRunInput") or {}, indent=1)
    return (
        "<h2>Recommended auto-accept thresholds</h2>"
        f"<p>Per label, the lowest confidence at which the images it would accept are shown, at "
        f"{_fmt(thresholds.get('confidence'))} confidence, to be wrong (missed objects included) no more often "
        f"than {_fmt(thresholds.get('target'))}. A label that cannot show it gets none and is always reviewed. "
        "For the next run's input:</p>"
        f"<pre>{escape(suggestion)}</pre>"
        + _table(["label", "recommended", "images", "error rate", "upper bound", "why none"], rows)
        + (_THRESHOLD_CHARTS + f'<div class="charts">{"".join(charts)}</div>' if any(charts) else "")
    )  # fmt: skip


def _confidence(report: Mapping[str, Any], problems: list[str]) -> str:
    """Per label, what people did with the predictions they were shown, by confidence."""
    histograms = report.get("confidenceHistograms")
    if not histograms:
        return ""
    by_label = histograms.get("byLabel") or {}
    recommended = {
        label: row.get("recommended")
        for label, row in ((report.get("thresholds") or {}).get("byLabel") or {}).items()
    }
    charts = [
        _chart(f"histogram ({label})", partial(histogram_chart, f"histogram-{i}", label, by_label[label],
                                               histograms.get("edges"), recommended.get(label)), problems)
        for i, label in enumerate(sorted(by_label))
    ]  # fmt: skip
    charts = [c for c in charts if c]
    return (
        "<h2>What people kept and corrected, by confidence</h2>"
        f"<p>The predictions people were shown (at minConfidence {_fmt(histograms.get('minConfidence'))} or "
        f"above), in {_fmt(histograms.get('binWidth'))}-point bins of confidence: kept as they were or moved "
        f"within the box tolerance, or corrected (moved past it, relabelled, deleted). Counts on the images "
        "people reviewed; with auto-accept on, the confident bins hold only the audited images. Where the "
        "hatching thins out, people rarely had to correct the model. Objects the model missed are no "
        "prediction and are not counted here: the thresholds' error counts them.</p>"
        + (f'<div class="charts">{"".join(charts)}</div>' if charts else "<p>No prediction was shown to people.</p>")
    )  # fmt: skip


def _work(report: Mapping[str, Any]) -> str:
    work = report.get("work") or {}
    rows = [[k, work.get(k)] for k in ("kept", "adjustedWithinTolerance", "corrected", "added", "removed",
            "shareNeedingNoCorrection", "imagesReviewed", "imagesCorrected", "correctionsPerReviewedImage",
            "imagesAutoAccepted", "reviewerSecondsPerImage")]  # fmt: skip
    return "<h2>Human work</h2>" + _table(["", "value"], rows)


def _budget(report: Mapping[str, Any]) -> str:
    """The review budget: what it bought, and the images that wait (review/budget.py)."""
    budget = report.get("budget") or {}
    limit = budget.get("reviewBudget")
    spent = (
        f"Review budget {_fmt(limit)} images, the audit included: {_fmt(budget.get('sentToPeople'))} sent to people "
        f"({_fmt(budget.get('audited'))} of them the audit), the images most likely to need a correction first."
        if limit is not None
        else f"No review budget: all {_fmt(budget.get('sentToPeople'))} images that needed people went to them, "
        "the most likely to need a correction first."
    )
    bought = (
        f"People answered {_fmt(budget.get('imagesReviewed'))} and corrected {_fmt(budget.get('correctionsFound'))} "
        f"objects on {_fmt(budget.get('imagesCorrected'))} images ({_fmt(budget.get('correctionsPerReviewedImage'))} "
        "per reviewed image)."
    )
    backlog = budget.get("backlog") or 0
    reasons = ", ".join(
        f"{_fmt(n)} {escape(str(reason))}" for reason, n in (budget.get("backlogByReason") or {}).items()
    )
    waiting = (
        f"{_fmt(backlog)} images wait for the next runs ({reasons}): {escape(str(budget.get('backlogNote')))}."
        if backlog
        else "No image waits for a later run."
    )
    rows = [[priority, n] for priority, n in (budget.get("reviewedByPriority") or {}).items()]
    return (
        "<h2>Review budget</h2>"
        f"<p>{spent} {bought} {waiting} The order, image by image with its score: "
        f"<code>{escape(str(budget.get('order', '')))}</code>.</p>"
        + _table(["reviewed because", "images"], rows)
    )  # fmt: skip


def _cost(report: Mapping[str, Any], problems: list[str]) -> str:
    cost = report.get("cost") or {}
    rows = [
        [name, line.get("quantity"), line.get("unit"), line.get("usd"), line.get("priceConfirmed", "–")]
        for name, line in cost.items()
        if isinstance(line, Mapping)
    ]
    best, worst = cost.get("perCorrectImageUsd95") or [None, None]
    return (
        "<h2>Cost (estimate)</h2>"
        + _table(["item", "quantity", "unit", "USD", "price confirmed"], rows)
        + f"<p>Total {_fmt(cost.get('totalUsd'))} USD: {_fmt(best)}-{_fmt(worst)} USD per correct image (auto-accepted "
        f"images the audit estimates wrong are not counted as correct). {escape(str(cost.get('note', '')))}</p>"
        + _chart("cost", lambda: cost_chart(cost), problems)
    )  # fmt: skip


def _training(report: Mapping[str, Any], problems: list[str]) -> str:
    training = report.get("training")
    if not training:
        return ""
    decision = training.get("decision") or {}
    rows = [
        [k, training.get(k)]
        for k in ("status", "previousF1", "newF1", "newProjectVersionArn", "error", "trainingHours")
    ]
    if decision:
        rows += [["promote", decision.get("promote")], ["reason", decision.get("reason")],
                 ["next run uses", decision.get("nextProjectVersionArn")]]  # fmt: skip
    return (
        "<h2>Next model version</h2>"
        + _table(["", "value"], rows)
        + _comparison(training.get("comparison"), decision, problems)
    )


def _comparison(
    comparison: Mapping[str, Any] | None, decision: Mapping[str, Any], problems: list[str]
) -> str:
    """The paired comparison on the frozen test set (evaluation/promotion.py), or why there is none."""
    if not comparison:
        return ""
    if not comparison.get("possible"):
        return f"<p>Not compared: {escape(str(comparison.get('reason')))}</p>"
    rows = [
        [name, _fmt(comparison[key]["estimate"]), " to ".join(_fmt(v) for v in comparison[key]["interval95"])]
        for name, key in (("F1, current version", "f1Before"), ("F1, new version", "f1After"),
                          ("Paired F1 difference (new - current)", "difference"))
    ]  # fmt: skip
    return (
        f"<p>Compared image by image on the same {comparison.get('testImages')} test images; promoted only "
        "when the whole interval of the difference is above 0.</p>"
        + _table(["", "estimate", "95 % interval"], rows)
        + _chart("comparison", lambda: comparison_chart(comparison, decision), problems)
    )


def _thumbnail_figure(item: Mapping[str, Any], thumbnails: Mapping[str, str | None]) -> str:
    ref = str(item["source-ref"])
    uri = thumbnails.get(ref)
    picture = f'<img src="{escape(uri)}" alt="{escape(ref)}">' if uri else "<p>(image could not be read)</p>"
    predicted = ", ".join(
        f"{p['label']} {float(p.get('confidence') or 0):.0f}" for p in item.get("predicted") or []
    )
    reviewed = ", ".join(str(r["label"]) for r in item.get("reviewed") or [])
    return (
        f"<figure>{picture}<figcaption>{escape(ref)}<br>{_fmt(item.get('disagreements'))} differences; "
        f"model: {escape(predicted) or 'nothing'}; people: {escape(reviewed) or 'nothing'}</figcaption></figure>"
    )


def _disagreements(
    report: Mapping[str, Any], thumbnails: Mapping[str, str | None], problems: list[str]
) -> str:
    items = report.get("disagreements") or []
    if not items:
        return "<h2>Where model and people disagreed</h2><p>Nowhere: people changed nothing.</p>"
    figures = []
    for item in items:
        try:
            figures.append(_thumbnail_figure(item, thumbnails))
        except Exception as error:  # one odd item is left out, never the report
            ref = item.get("source-ref") if isinstance(item, Mapping) else None
            problems.append(f"report.html: disagreement {ref!r} not shown ({type(error).__name__}: {error})")
    legend = (
        f'<span class="key" style="background:{_rgb(PREDICTED_COLOUR)}"></span>model (thick) '
        f'<span class="key" style="background:{_rgb(REVIEWED_COLOUR)}"></span>people (thin)'
    )
    return f'<h2>Where model and people disagreed most</h2><p>{legend}</p><div class="grid">{"".join(figures)}</div>'


def _section(name: str, render_section: Callable[[], str], problems: list[str]) -> str:
    """A section of the report, or a line saying it could not be shown: nothing in the report's
    rendering may fail the run (report.json holds the same figures)."""
    try:
        return render_section()
    except Exception as error:
        problems.append(
            f"report.html: the {name} section could not be shown ({type(error).__name__}: {error})"
        )
        return f"<h2>{escape(name.capitalize())}</h2><p>(could not be shown: see report.json)</p>"


def render(report: Mapping[str, Any], thumbnails: Mapping[str, str | None]) -> tuple[str, list[str]]:
    """The HTML, and what could not be shown in it (each a warning for report.json)."""
    problems: list[str] = []
    counts = report.get("counts") or {}
    warnings = "".join(f'<div class="warn">{escape(str(w))}</div>' for w in report.get("warnings") or [])
    sections = [
        ("counts", lambda: "<h2>Counts</h2>" + _table(["", "count"], [[k, v] for k, v in counts.items()])),
        ("quality", lambda: _quality(report, problems)),
        ("audit", lambda: _audit(report, problems)),
        ("thresholds", lambda: _thresholds(report, problems)),
        ("confidence", lambda: _confidence(report, problems)),
        ("work", lambda: _work(report)),
        ("budget", lambda: _budget(report)),
        ("cost", lambda: _cost(report, problems)),
        ("training", lambda: _training(report, problems)),
        ("disagreements", lambda: _disagreements(report, thumbnails, problems)),
    ]
    body = "".join(_section(name, section, problems) for name, section in sections)
    html = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Labeling run {escape(str(report.get('runId')))}</title><style>{_CSS}</style></head><body>"
        f"<h1>Labeling run {escape(str(report.get('runId')))}</h1>"
        f"<p>{escape(str(report.get('status')))} &middot; {escape(str(report.get('taskType')))} &middot; "
        f"review: {escape(str(report.get('backend')))} &middot; manifest <code>{escape(str(report.get('manifest')))}</code></p>"
        + warnings
        + ("<p>Nothing to do: no image under the prefix was new to this run (every one is labeled, "
           "or in another run's review).</p>" if report.get("nothingToDo") else "")
        + "".join(f'<div class="warn">{escape(p)}</div>' for p in problems)
        + body
        + "</body></html>"
    )  # fmt: skip
    return html, problems
