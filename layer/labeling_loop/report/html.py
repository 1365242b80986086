"""report.html: the run report for people, beside report.json, self-contained (inline CSS, images as
`data:` URIs), so the S3 console's Open shows it without any other file or network access."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from typing import Any

from labeling_loop.report.thumbnails import PREDICTED_COLOUR, REVIEWED_COLOUR

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.warn{background:#fff4e0;border-left:4px solid #e68a00;padding:.4em .8em;margin:.3em 0}
.ok{color:#06713a}.bad{color:#b00020}.grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #ddd;padding:6px;width:372px}figcaption{font-size:.8em;word-break:break-all}
code,pre{background:#f6f6f6;padding:.1em .3em}.key{display:inline-block;width:1em;height:.7em;margin:0 .3em}
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


def _quality(report: Mapping[str, Any]) -> str:
    quality = report.get("quality") or {}
    reviewed = quality.get("reviewedImages") or {}
    whole = quality.get("wholeRun")
    labels = sorted(set(reviewed.get("byLabel") or {}) | set((whole or {}).get("byLabel") or {}))
    rows = []
    for name, r, w in [("all labels", reviewed.get("overall"), (whole or {}).get("overall"))] + [
        (label, (reviewed.get("byLabel") or {}).get(label), (whole or {}).get("byLabel", {}).get(label))
        for label in labels
    ]:
        r, w = r or {}, w or {}
        rows.append(
            [
                name,
                r.get("precision"),
                r.get("recall"),
                r.get("f1"),
                w.get("precision"),
                w.get("recall"),
                w.get("f1"),
            ]
        )
    note = escape(str(quality.get("wholeRunNote", "")))
    return (
        "<h2>Model quality</h2>"
        f"<p>IoU {_fmt(quality.get('iouThreshold'))}, predictions at minConfidence {_fmt(quality.get('minConfidence'))}, "
        f"{_fmt(reviewed.get('images'))} reviewed images. Whole run: {note}.</p>"
        + _table(
            ["label", "precision (reviewed)", "recall (reviewed)", "F1 (reviewed)", "precision (whole run)",
             "recall (whole run)", "F1 (whole run)"],
            rows,
        )
    )  # fmt: skip


def _audit(report: Mapping[str, Any]) -> str:
    audit = report.get("audit")
    if not audit:
        counts = report.get("counts") or {}
        if not counts.get("imagesReviewed") and not counts.get("imagesAutoAccepted"):
            return "<h2>Auto-accept audit</h2><p>No image was reviewed or auto-accepted in this run.</p>"
        return "<h2>Auto-accept audit</h2><p>No image was auto-accepted (auto-accept off, or no image qualified): people reviewed every image.</p>"
    low, high = audit.get("interval95") or [None, None]
    verdict = (
        f'<span class="ok">upper bound {_fmt(high)} within the target {_fmt(audit.get("target"))}</span>'
        if audit.get("meetsTarget")
        else f'<span class="bad">upper bound {_fmt(high)} above the target {_fmt(audit.get("target"))}</span>'
    )
    return (
        "<h2>Auto-accept audit</h2>"
        f"<p>{_fmt(audit.get('audited'))} of {_fmt(audit.get('candidates'))} images that would have been "
        f"auto-accepted were reviewed anyway; people changed {_fmt(audit.get('errors'))} of the "
        f"{_fmt(audit.get('reviewed'))} answered. Auto-accept error rate {_fmt(audit.get('errorRate'))}, "
        f"95 % interval [{_fmt(low)}, {_fmt(high)}]: {verdict}.</p>"
    )


def _thresholds(report: Mapping[str, Any]) -> str:
    thresholds = report.get("thresholds") or {}
    rows = []
    for label, row in [
        *sorted((thresholds.get("byLabel") or {}).items()),
        ("all labels", thresholds.get("allLabels") or {}),
    ]:
        best = row if row.get("recommended") is not None else row.get("best") or {}
        rows.append(
            [
                label,
                row.get("recommended"),
                best.get("precision"),
                best.get("precisionLowerBound"),
                best.get("predictions"),
            ]
        )
    suggestion = json.dumps(thresholds.get("nextRunInput") or {}, indent=1)
    return (
        "<h2>Recommended auto-accept thresholds</h2>"
        f"<p>The lowest confidence whose precision's 95 % lower bound reaches {_fmt(thresholds.get('target'))}, "
        "from every prediction people reviewed. For the next run's input:</p>"
        f"<pre>{escape(suggestion)}</pre>"
        + _table(["label", "recommended", "precision", "lower bound", "predictions"], rows)
    )  # fmt: skip


def _work(report: Mapping[str, Any]) -> str:
    work = report.get("work") or {}
    rows = [[k, work.get(k)] for k in ("kept", "adjusted", "added", "removed", "shareNeedingNoChange",
            "imagesReviewed", "imagesUnchanged", "imagesAutoAccepted", "reviewerSecondsPerImage")]  # fmt: skip
    return "<h2>Human work</h2>" + _table(["", "value"], rows)


def _cost(report: Mapping[str, Any]) -> str:
    cost = report.get("cost") or {}
    rows = [
        [name, line.get("quantity"), line.get("unit"), line.get("usd"), line.get("priceConfirmed", "–")]
        for name, line in cost.items()
        if isinstance(line, Mapping)
    ]
    return (
        "<h2>Cost (estimate)</h2>"
        + _table(["item", "quantity", "unit", "USD", "price confirmed"], rows)
        + f"<p>Total {_fmt(cost.get('totalUsd'))} USD, {_fmt(cost.get('perLabeledImageUsd'))} USD per labeled "
        f"image. {escape(str(cost.get('note', '')))}</p>"
    )


def _training(report: Mapping[str, Any]) -> str:
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
    return "<h2>Next model version</h2>" + _table(["", "value"], rows)


def _figure(item: Mapping[str, Any], thumbnails: Mapping[str, str | None]) -> str:
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
            figures.append(_figure(item, thumbnails))
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
        ("quality", lambda: _quality(report)),
        ("audit", lambda: _audit(report)),
        ("thresholds", lambda: _thresholds(report)),
        ("work", lambda: _work(report)),
        ("cost", lambda: _cost(report)),
        ("training", lambda: _training(report)),
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
