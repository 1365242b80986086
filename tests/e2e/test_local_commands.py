"""The `labeling-loop` command against the background local cloud, as a person types it: each command
a new process (`--local` verbs share one cloud that outlives them), the README's CLI examples run as
written, and a person reviewing a run in a real Label Studio in headless Chromium (the run finishes
when they submit, and their box is in the manifest).

One background cloud serves the module (started by the first command, stopped at the end); each test
also works alone."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser  # tests/e2e/browser.py: headless Chromium over DevTools
import pytest

from labeling_ops import local

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
chromium = browser.chromium


@pytest.fixture(scope="module")
def cloud_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("local-cloud")
    yield folder
    local.down(folder)


def _env(cloud_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(LABELING_LOOP_LOCAL_DIR=str(cloud_dir), PATH=f"{BIN}:{env.get('PATH', '')}", COLUMNS="80")
    return env


def run(line: str, cloud_dir: Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """One command line, as a shell would run it (its comment dropped), in a new process, piped."""
    argv = shlex.split(line, comments=True)
    return subprocess.run(
        argv, cwd=cwd, env=_env(cloud_dir), capture_output=True, text=True, timeout=timeout, check=False
    )


def test_verbs_in_separate_commands_act_on_the_same_local_cloud(cloud_dir: Path, tmp_path: Path) -> None:
    # GIVEN a run started by one command, still waiting for its model (a long poll)
    started = run("labeling-loop start --local --name waiting --model-poll-seconds 3600", cloud_dir, tmp_path)
    assert started.returncode == 0, started.stderr
    assert "started waiting" in started.stdout
    pid = local.running(cloud_dir).pid  # type: ignore[union-attr]

    # WHEN other commands list, show and stop it
    listed = run("labeling-loop list --local --json", cloud_dir, tmp_path)
    shown = run("labeling-loop show --local waiting", cloud_dir, tmp_path)
    stopped = run("labeling-loop stop --local waiting", cloud_dir, tmp_path)
    after = run("labeling-loop list --local --json", cloud_dir, tmp_path)

    # THEN each sees the same run, in the same cloud process
    assert [r["status"] for r in json.loads(listed.stdout) if r["name"] == "waiting"] == ["RUNNING"]
    assert "waiting: RUNNING" in shown.stdout and "still running" in shown.stdout
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopped waiting: execution ABORTED" in stopped.stdout
    assert "cleanup: done (run record cleaned-up)" in stopped.stdout
    assert [r["status"] for r in json.loads(after.stdout) if r["name"] == "waiting"] == ["ABORTED"]
    assert local.running(cloud_dir).pid == pid  # type: ignore[union-attr]

    # and a run followed to its end in one command is shown whole by the next, as JSON for scripts
    done = run("labeling-loop start --local --name whole --follow", cloud_dir, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(run("labeling-loop show --local whole --json", cloud_dir, tmp_path).stdout)
    assert document["status"] == "SUCCEEDED"
    assert (
        document["output"]["counts"]["imagesInManifest"] == document["output"]["counts"]["imagesListed"] > 0
    )
    # piped output is whole lines: the execution ARN is not cut at the terminal's width (COLUMNS=80)
    arn = document["executionArn"]
    assert any(line.endswith(arn) for line in done.stdout.splitlines()), done.stdout


def test_a_failed_run_is_one_line_with_the_cause_and_the_fix(cloud_dir: Path, tmp_path: Path) -> None:
    # GIVEN a run of a model version the project does not have (the input is well formed, so only
    # the workflow can tell: its Lambda fails with an error document and a stack trace)
    run("labeling-loop local up", cloud_dir, tmp_path)
    state = local.running(cloud_dir).state  # type: ignore[union-attr]
    model = json.loads(state["stack"]["validatorEnvironment"]["RUN_DEFAULTS"])["projectVersionArn"]
    missing = re.sub(r"/version/[^/]+/", "/version/no-such-version/", model)

    # WHEN it is followed, and shown
    followed = run(
        f"labeling-loop start --local --name missing --project-version-arn {missing} --follow",
        cloud_dir,
        tmp_path,
    )
    shown = run("labeling-loop show --local missing", cloud_dir, tmp_path)
    document = json.loads(run("labeling-loop show --local missing --json", cloud_dir, tmp_path).stdout)

    # THEN the person reads one line: the error, the cause's message, what to do; no trace anywhere
    assert followed.returncode == 1 and shown.returncode == 1
    assert document["status"] == "FAILED" and document["error"] == "ModelNotFoundError"
    (line,) = [text for text in shown.stdout.splitlines() if text.startswith("error:")]
    assert line.startswith("error: ModelNotFoundError: ") and "(what to do: check projectVersionArn" in line
    assert document["failure"] == line.removeprefix("error: ")
    for text in (followed.stdout, followed.stderr, shown.stdout, shown.stderr, json.dumps(document)):
        assert "Traceback" not in text and "stackTrace" not in text and ", line " not in text, text


def _readme_blocks() -> list[list[str]]:
    """The README's fenced blocks that are `labeling-loop` command lines."""
    blocks, current, inside = [], [], False
    for line in (ROOT / "README.md").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if inside and current and all(c.startswith("labeling-loop ") for c in current):
                blocks.append(current)
            current, inside = [], not inside
        elif inside and stripped:
            current.append(stripped)
    return blocks


# A person, in the browser ---------------------------------------------------------------------------

DRAWN = {"label": "circle", "left": 300, "top": 150, "width": 100, "height": 100}
IMAGE = "[...document.images].find(i => i.naturalWidth > 0 && i.src.startsWith('blob'))"


def _wait(page: browser.Chromium, expression: str, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.3)
    shot = Path(tempfile.mkdtemp(prefix="never-")) / "page.png"
    shot.write_bytes(
        base64.b64decode(page.send("Page.captureScreenshot", {"format": "png"}, page=True)["data"])
    )
    raise AssertionError(
        f"the page never showed {what} (screenshot {shot}): {page.evaluate('document.body.innerText')!r:.600}"
    )


def _sign_in(page: browser.Chromium, base: str, username: str, password: str) -> None:
    """Through Label Studio's own sign-in form, as a person would."""
    page.send("Page.enable", page=True)
    page.send("Page.navigate", {"url": f"{base}/user/login/"}, page=True)
    _wait(page, "!!document.querySelector('input[name=email]')", "the sign-in form")
    page.evaluate(
        f"document.querySelector('input[name=email]').value = {json.dumps(username)};"
        f"document.querySelector('input[name=password]').value = {json.dumps(password)};"
        "document.querySelector('form').submit(); 1"
    )
    _wait(page, "!location.pathname.startsWith('/user/login')", "the signed-in page")


def _draw(page: browser.Chromium, box: dict[str, Any]) -> None:
    """Pick the label, then drag a rectangle over the image (image pixels to page pixels)."""
    page.evaluate("document.querySelector('[aria-label=\"Hide all regions\"]').click(); 1")  # the model's
    label = json.dumps(box["label"])
    page.evaluate(
        f"[...document.querySelectorAll('.lsf-label')].find(e => e.innerText.startsWith({label})).click(); 1"
    )
    x0, y0, scale = json.loads(
        page.evaluate(
            f"JSON.stringify((() => {{ const i = {IMAGE}; const r = i.getBoundingClientRect();"
            " return [r.x, r.y, r.width / i.naturalWidth]; })())"
        )
    )

    def mouse(kind: str, px: float, py: float, buttons: int = 1) -> None:
        point = {"x": x0 + px * scale, "y": y0 + py * scale}
        page.send(
            "Input.dispatchMouseEvent",
            {"type": kind, **point, "button": "left", "buttons": buttons, "clickCount": 1},
            page=True,
        )

    left, top = box["left"], box["top"]
    mouse("mouseMoved", left, top, 0)
    mouse("mousePressed", left, top)
    for step in range(1, 11):
        mouse("mouseMoved", left + box["width"] * step / 10, top + box["height"] * step / 10)
    mouse("mouseReleased", left + box["width"], top + box["height"], 0)


def test_a_person_reviews_a_local_run_in_the_browser(
    cloud_dir: Path, tmp_path: Path, chromium: browser.Chromium
) -> None:
    # GIVEN the README's command for a review by a person, running
    (line,) = [
        line for block in _readme_blocks() for line in block if line.startswith("labeling-loop local review")
    ]
    command = subprocess.Popen(
        shlex.split(line, comments=True),
        cwd=tmp_path,
        env=_env(cloud_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        shown: list[str] = []
        deadline = time.monotonic() + 600  # Label Studio's first start included
        while not any("task(s)" in text for text in shown):
            assert time.monotonic() < deadline and command.poll() is None, "".join(shown)
            shown.append(command.stdout.readline())  # type: ignore[union-attr]
        text = "".join(shown)
        project_url = re.search(r"open\s+(\S+)", text)[1]  # type: ignore[index]
        username, password = re.search(r"sign in\s+(\S+) / (\S+)", text).groups()  # type: ignore[union-attr]
        tasks = int(re.search(r"(\d+) task\(s\)", text)[1])  # type: ignore[index]

        # WHEN a person signs in, opens the project, draws a box on the first image and submits
        # every task
        _sign_in(chromium, project_url.split("/projects/")[0], username, password)
        chromium.send("Page.navigate", {"url": project_url}, page=True)
        _wait(
            chromium,
            "[...document.querySelectorAll('button')].some(b => b.innerText.trim() == 'Label All Tasks')",
            "the project's tasks",
        )
        chromium.evaluate(
            "[...document.querySelectorAll('button')]"
            ".find(b => b.innerText.trim() == 'Label All Tasks').click(); 1"
        )
        seen: list[str] = []
        for number in range(1, tasks + 1):
            source = _wait(
                chromium,
                f"(() => {{ const i = {IMAGE};"
                f" return i && i.complete && !{json.dumps(seen)}.includes(i.src) ? i.src : null; }})()",
                f"task {number} of {tasks}",
            )
            seen.append(source)
            time.sleep(0.5)  # the model's regions settle on the canvas
            if number == 1:
                _draw(chromium, DRAWN)
                regions = chromium.evaluate(
                    "[...document.querySelectorAll('.lsf-outliner-item__title')].map(e => e.innerText.trim())"
                )
                assert "circle" in regions, regions
            chromium.evaluate(
                "document.querySelector('[aria-label=\"Submit current annotation\"]').click(); 1"
            )

        # THEN the run finishes by itself, and the manifest holds the person's box
        rest, _ = command.communicate(timeout=300)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    output = "".join(shown) + rest
    assert command.returncode == 0, output
    assert "SUCCEEDED" in output and "The manifest, with your boxes:" in output
    (manifest,) = list((tmp_path / "review-out").glob("*/output.manifest"))
    boxes = []
    for raw in manifest.read_text().splitlines():
        line = json.loads(raw)
        for key, value in line.items():
            if isinstance(value, dict) and "annotations" in value:
                names = line[f"{key}-metadata"]["class-map"]
                boxes += [{"label": names[str(a["class_id"])], **a} for a in value["annotations"]]
    mine = [b for b in boxes if b["label"] == "circle" and abs(b["left"] - DRAWN["left"]) <= 3]
    assert mine, boxes
    assert all(abs(mine[0][k] - DRAWN[k]) <= 3 for k in ("left", "top", "width", "height")), mine
    assert (manifest.parent / "report.html").exists()


# Last: the README block ends with `labeling-loop local down`.


def test_the_readme_cli_examples_run_as_written(cloud_dir: Path, tmp_path: Path) -> None:
    (local_block,) = [b for b in _readme_blocks() if any("--local" in line for line in b)]
    assert any("local down" in line for line in local_block), "the README shows how to stop it"
    (tmp_path / "events").symlink_to(ROOT / "events")  # as in a clone's root, with its own outputs
    for line in local_block:
        if line.split("#")[0].strip() == "labeling-loop local review":
            continue  # a person reviews that one: test_a_person_reviews_a_local_run_in_the_browser
        result = run(line, cloud_dir, tmp_path)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "reports" / "report.html").exists()
    assert local.running(cloud_dir) is None  # the block ends with `labeling-loop local down`
