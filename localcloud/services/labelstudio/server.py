"""Start and stop a real Label Studio server on loopback for the local cloud and the e2e tests.

Label Studio (pinned in localcloud/install_labelstudio.sh) lives in its own virtual environment,
`.venv-labelstudio`, because its Django/boto3 pins would downgrade the test environment. It runs as a
child process with SQLite and a fresh data directory, offline (no version check, no analytics).

Authentication: the server starts with a default user, a legacy token (`--user-token`) and
legacy tokens enabled for the organization (`--enable-legacy-api-token`, Label Studio >= 1.20);
that legacy token then creates the user's personal access token (POST /api/token/), which is what
Label Studio 1.23 users have by default. Both are handed out, so tests cover both kinds.

Images: Label Studio reads S3 through its own boto3. Pass `s3_endpoint` (e.g. a moto server on
127.0.0.1) and it is set as the server's `S3_ENDPOINT` (with fake credentials), the operator-level
endpoint that Label Studio trusts; a loopback `s3_endpoint` on the storage itself is refused by its
SSRF protection.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from localcloud.paths import REPO_ROOT

logger = logging.getLogger(__name__)

DEFAULT_VENV = REPO_ROOT / ".venv-labelstudio"
INSTALL_SCRIPT = REPO_ROOT / "localcloud" / "install_labelstudio.sh"
LABEL_STUDIO_VERSION = "1.23.2"
STARTUP_TIMEOUT_SECONDS = 180.0  # about 35 s on a 2-core machine, first start runs migrations


class LabelStudioStartError(RuntimeError):
    """The server did not come up (the message carries the tail of its log)."""


@dataclass(frozen=True)
class LabelStudioServer:
    url: str  # http://127.0.0.1:<port>
    token: str  # personal access token (JWT refresh token)
    legacy_token: str  # legacy API token (enabled for the organization)
    username: str  # the default user's e-mail
    password: str
    data_dir: Path
    log_path: Path
    pid: int


def labelstudio_executable(venv: Path = DEFAULT_VENV) -> Path:
    return venv / "bin" / "label-studio"


def is_installed(venv: Path = DEFAULT_VENV) -> bool:
    return labelstudio_executable(venv).exists()


def ensure_installed(venv: Path = DEFAULT_VENV) -> Path:
    """Create the virtual environment with the pinned Label Studio if it is missing (about a
    minute from PyPI); return the `label-studio` executable."""
    if not is_installed(venv):
        logger.info("installing label-studio %s into %s", LABEL_STUDIO_VERSION, venv)
        subprocess.run(["bash", str(INSTALL_SCRIPT), str(venv)], check=True)
    return labelstudio_executable(venv)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(data_dir: Path, s3_endpoint: str | None, region: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LABEL_STUDIO_", "HTTP", "http"))}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LATEST_VERSION_CHECK="false",  # no call to PyPI at start
        COLLECT_ANALYTICS="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        NO_PROXY="127.0.0.1,localhost",
        # Label Studio's own AWS identity, used when a storage carries no credentials.
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=region,
        S3_region=region,
    )
    if s3_endpoint:
        env["S3_ENDPOINT"] = s3_endpoint
    return env


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabelStudioStartError(f"label-studio exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200 and b"UP" in response.read():
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise LabelStudioStartError(f"label-studio not healthy after {timeout:g} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _create_personal_token(url: str, legacy_token: str) -> str:
    """The user's personal access token, made with the legacy token (a fresh database has none)."""
    request = urllib.request.Request(
        f"{url}/api/token/", method="POST", headers={"Authorization": f"Token {legacy_token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["token"])


def start_labelstudio(
    workdir: Path,
    *,
    port: int | None = None,
    s3_endpoint: str | None = None,
    region: str = "us-east-1",
    venv: Path = DEFAULT_VENV,
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
) -> tuple[LabelStudioServer, subprocess.Popen[bytes]]:
    """Start a server with a fresh data directory under `workdir`; return once /health is UP and
    the tokens exist. Stop it with `stop_labelstudio`."""
    executable = labelstudio_executable(venv)
    if not executable.exists():
        raise LabelStudioStartError(f"{executable} is missing: run `make labelstudio-venv`")
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="labelstudio-", dir=workdir))
    log_path = data_dir / "label-studio.log"
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    username, password = "reviewer@example.com", secrets.token_urlsafe(12)
    legacy_token = secrets.token_hex(20)
    command = [
        str(executable),
        "start",
        "--no-browser",
        "--internal-host", "127.0.0.1",
        "--port", str(port),
        "--host", url,
        "--data-dir", str(data_dir),
        "--database", str(data_dir / "label_studio.sqlite3"),
        "--username", username,
        # `=` forms: a random secret may start with "-", which argparse would take for an option.
        f"--password={password}",
        f"--user-token={legacy_token}",
        "--enable-legacy-api-token",
        "--log-level", "WARNING",
    ]  # fmt: skip
    log_file = log_path.open("wb")
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=data_dir,
        env=_server_env(data_dir, s3_endpoint, region),
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stop() reaches every child
    )
    log_file.close()
    try:
        _wait_healthy(url, process, log_path, startup_timeout)
        token = _create_personal_token(url, legacy_token)
    except BaseException:
        _terminate(process)
        raise
    logger.info("label-studio up at %s in %.1f s (pid %d)", url, time.monotonic() - started, process.pid)
    server = LabelStudioServer(
        url=url,
        token=token,
        legacy_token=legacy_token,
        username=username,
        password=password,
        data_dir=data_dir,
        log_path=log_path,
        pid=process.pid,
    )
    return server, process


def _terminate(process: subprocess.Popen[bytes], grace_seconds: float = 10.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_seconds)


def stop_labelstudio(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL after a grace period."""
    _terminate(process)
    logger.info("label-studio (pid %d) stopped with %s", process.pid, process.returncode)


@contextlib.contextmanager
def running_labelstudio(
    workdir: Path,
    *,
    port: int | None = None,
    s3_endpoint: str | None = None,
    region: str = "us-east-1",
    venv: Path = DEFAULT_VENV,
) -> Iterator[LabelStudioServer]:
    """`with running_labelstudio(tmp) as server:` a live server for the duration of the block."""
    server, process = start_labelstudio(workdir, port=port, s3_endpoint=s3_endpoint, region=region, venv=venv)
    try:
        yield server
    finally:
        stop_labelstudio(process)


def main() -> None:
    """`python -m localcloud.services.labelstudio.server [--install-only]`: install, or run until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install-only", action="store_true")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--s3-endpoint")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / ".localcloud")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ensure_installed()
    if args.install_only:
        return
    # Stop cleanly on TERM and on Ctrl-C even when started in the background (where SIGINT is
    # ignored by default): both unwind the context manager, which stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with running_labelstudio(args.workdir, port=args.port, s3_endpoint=args.s3_endpoint) as server:
        logger.info("url=%s user=%s password=%s", server.url, server.username, server.password)
        logger.info("token=%s", server.token)
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            signal.pause()


if __name__ == "__main__":
    main()
