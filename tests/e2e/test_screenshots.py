"""The README's pictures of the command, taken as a person would see them: `labeling-loop start --help`,
and `follow` at one inference unit half way through the run's one batch (its progress object says
how far the batch is; the Map Run alone would say 0). Each is rendered by rich as the terminal shows
it, exported to HTML, opened in headless Chromium and captured once fonts are loaded and two frames
have painted. The captures land in the test's folder; `make screenshots` (SCREENSHOTS_DIR) writes
them, palette-compressed, to docs/images/ for the README."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import browser  # tests/e2e/browser.py: headless Chromium over DevTools
import pytest
from PIL import Image
from rich.console import Console
from rich.terminal_theme import MONOKAI
from rich.text import Text

from labeling_ops import cli, fetch, render, verbs
from labeling_ops.local import local_stack
from localcloud.services.custom_labels import CustomLabelsConfig

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
chromium = browser.chromium
WIDTH = 100  # terminal columns


def _html_of(renderable: object, title: str) -> str:
    console = Console(
        record=True, width=WIDTH, file=io.StringIO(), color_system="truecolor", force_terminal=True
    )
    console.print(renderable)
    return console.export_html(theme=MONOKAI, inline_styles=True).replace(
        "<head>", f"<head><title>{title}</title>"
    )


def _capture(page: browser.Chromium, html: str, path: Path) -> Image.Image:
    """Open the page, wait for fonts and two painted frames, capture the text's box as PNG."""
    path.with_suffix(".html").write_text(html)
    page.send("Page.enable", page=True)
    page.send("Page.navigate", {"url": path.with_suffix(".html").as_uri()}, page=True)
    page.wait_until_painted()
    return page.screenshot(path, "pre")


def _assert_painted(image: Image.Image, text_rows: int) -> None:
    """The capture shows text: about a line of pixels per row of text, mostly background, and
    enough lit pixels that it is not an empty frame."""
    assert image.height >= text_rows * 10, (image.size, text_rows)
    raw = image.convert("RGB").tobytes()
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    counts: dict[bytes, int] = {}
    for pixel in pixels:
        counts[pixel] = counts.get(pixel, 0) + 1
    background = max(counts, key=lambda pixel: counts[pixel])
    lit = sum(
        n for p, n in counts.items() if sum(abs(a - b) for a, b in zip(p, background, strict=True)) > 60
    )
    assert 0.005 < lit / len(pixels) < 0.5, lit / len(pixels)


def _publish(path: Path) -> None:
    """Into SCREENSHOTS_DIR (make screenshots), as a small palette PNG."""
    target = os.environ.get("SCREENSHOTS_DIR")
    if target:
        image = Image.open(path).convert("RGB").quantize(colors=16)
        image.save(Path(target) / path.name, optimize=True)


def test_start_help(chromium: browser.Chromium, tmp_path: Path) -> None:
    start = cli.parser()._subparsers._group_actions[0].choices["start"]  # type: ignore[union-attr]
    start.formatter_class = lambda prog: cli.argparse.HelpFormatter(prog, width=WIDTH)  # type: ignore[attr-defined]
    text = start.format_help()
    words = " ".join(text.split())
    assert "--min-confidence N" in words and "(0-100; default: the stack's setting)" in words

    image = _capture(
        chromium, _html_of(Text(text), "labeling-loop start --help"), tmp_path / "start-help.png"
    )

    _assert_painted(image, len(text.splitlines()))
    _publish(tmp_path / "start-help.png")


def test_follow_at_one_inference_unit_mid_batch(chromium: browser.Chromium, tmp_path: Path) -> None:
    # GIVEN a model at one inference unit that takes a while per image: one batch of 40 images
    slow = CustomLabelsConfig(
        start_latency_s=1.0, stop_latency_s=0.5, tps_per_inference_unit=4.0, detect_latency_s=0.1
    )
    with local_stack(count=40, data_dir=tmp_path / "data", model=slow) as session:
        ctx = verbs.Context(session.clients, session.stack, Console(file=io.StringIO()))
        arn = verbs.start(ctx, {"minInferenceUnits": 1}, "screenshot")
        assert arn is not None

        # WHEN follow looks while the batch runs
        deadline, shown = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            progress = fetch.run_progress(session.clients, arn)
            if progress.phase == "inference" and 5 <= (progress.images_inferred or 0) <= 30:
                shown = progress
                break
            assert progress.status == "RUNNING", progress
            time.sleep(0.2)
        assert shown is not None, "follow never saw the batch half way"

        # THEN it shows the images inferred so far though no batch has ended
        lines = dict(render.progress_lines(shown))
        assert lines["inference"] == f"0 / 1 batches, images inferred {shown.images_inferred} / 40", lines
        image = _capture(
            chromium,
            _html_of(render.progress_panel(shown), "labeling-loop follow"),
            tmp_path / "follow-mid-batch.png",
        )
        session.cloud.stop(arn)

    _assert_painted(image, len(render.progress_lines(shown)) + 2)
    _publish(tmp_path / "follow-mid-batch.png")
