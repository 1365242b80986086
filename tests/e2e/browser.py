"""Headless Chromium (Debian's /usr/bin/chromium, `make chromium`) driven over the DevTools protocol
on a pipe (`--remote-debugging-pipe`, fds 3 and 4, NUL-separated JSON): no websocket client or
browser-driver package needed. Used by the Label Studio browser test, the report.html tests and the
README's screenshots."""

import base64
import io
import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")


class Chromium:
    """Headless Chromium and one page, commanded over the DevTools pipe."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 900) -> None:
        to_chrome_read, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_write = os.pipe()

        def wire_pipes() -> None:  # in the child: commands on fd 3, replies on fd 4
            read_end, write_end = os.dup(to_chrome_read), os.dup(from_chrome_write)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        command = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            command,
            pass_fds=(3, 4),  # kept open past preexec_fn; they hold our pipe ends by then
            preexec_fn=wire_pipes,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_read)
        os.close(from_chrome_write)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []  # what the browser told unasked (Network.*, ...)
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})[
            "sessionId"
        ]

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, page: bool = False
    ) -> dict[str, Any]:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if "method" in reply and "id" not in reply:
                    self.events.append(reply)
                    continue
                if reply.get("id") == self._last_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return dict(reply.get("result", {}))
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(remaining, 0))
            if not ready:
                raise TimeoutError(f"chromium did not answer {method}")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, page=True)
        return result["result"].get("value")

    def wait_until_painted(self, timeout: float = 60) -> None:
        """Loaded, fonts ready, every image decoded, and two animation frames drawn."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(
            "document.readyState === 'complete' && document.fonts.status === 'loaded'"
            " && [...document.images].every(i => i.complete)"
        ):
            assert time.monotonic() < deadline, "the page never finished loading"
            time.sleep(0.1)
        self.send(
            "Runtime.evaluate",
            {
                "expression": "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
                "awaitPromise": True,
            },
            page=True,
        )

    def screenshot(self, path: Path, selector: str | None = None) -> Image.Image:
        """A PNG of the element `selector` names, or of the whole page, written to `path`."""
        if selector is None:
            size = self.send("Page.getLayoutMetrics", page=True)["cssContentSize"]
            box = [0, 0, size["width"], size["height"]]
        else:
            box = self.evaluate(
                f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                " return [r.x + window.scrollX, r.y + window.scrollY, r.width, r.height]; })()"
            )
        x, y, width, height = (float(v) for v in box)
        clip = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
            page=True,
        )
        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        image = Image.open(io.BytesIO(data))
        image.load()
        return image

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture
def chromium() -> Iterator[Chromium]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `make chromium`", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        browser = Chromium(Path(profile))
        try:
            yield browser
        finally:
            browser.close()
