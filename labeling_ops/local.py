"""`--local`: the same verbs against the local cloud (localcloud/), which runs in the background and
outlives each command, so `start --local` in one command and `list --local` in the next see the same
run.

The first `--local` verb (or `labeling-loop local up`) starts it: a process of its own
(`labeling_ops/background.py`) that deploys template.yaml, uploads synthetic images with their ground
truth, registers a stopped model as the stack's default (`ProjectVersionArn`, so `start` with no
input works like a console start with `{}`) and answers AWS calls on a loopback port. What it is and
where it listens is in a state folder (`.localcloud/background/` in the repository, or
$LABELING_LOOP_LOCAL_DIR): `cloud.json`, and its log `cloud.log`. `labeling-loop local down` stops
it (and forgets its runs).

Reviews: the emulated Ground Truth annotators answer `groundtruth` runs; `labelstudio` runs are
reviewed in a real Label Studio started on first use, by emulated reviewers, or by a person when the
run was started by `labeling-loop local review`.

`local_stack` is the same cloud in this process, for tests and the notebook's `LabelingLoop.local()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from rich.console import Console

from labeling_ops.aws import CLIENT_CONFIG, Clients, OpsError, StackInfo

IMAGES_PREFIX = "incoming/"
DEFAULT_COUNT = 40
# Wait and Retry states run 500 times faster than defined: a 900 s review poll takes 1.8 s.
TIME_SCALE = 0.002
STATE_FILE, LOG_FILE, LOCK_FILE = "cloud.json", "cloud.log", "cloud.lock"
START_TIMEOUT_S = 300.0
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def default_dir() -> Path:
    """The state folder: $LABELING_LOOP_LOCAL_DIR, else .localcloud/background in the repository."""
    if os.environ.get("LABELING_LOOP_LOCAL_DIR"):
        return Path(os.environ["LABELING_LOOP_LOCAL_DIR"]).resolve()
    from localcloud.paths import REPO_ROOT

    return REPO_ROOT / ".localcloud" / "background"


def local_cloud_available() -> str | None:
    """None when this Python can run the local cloud, else the missing package's name."""
    import importlib.util

    for module in ("moto", "samtranslator", "aws_lambda_powertools", "PIL"):
        if importlib.util.find_spec(module) is None:
            return module
    return None


# The background cloud, seen from a command -------------------------------------------------------


@dataclass
class LocalCloud:
    """A running background cloud, as its state file describes it."""

    folder: Path
    state: dict[str, Any]

    @property
    def endpoint(self) -> str:
        return str(self.state["endpoint"])

    @property
    def pid(self) -> int:
        return int(self.state["pid"])

    def clients(self) -> Clients:
        """Clients of the local cloud's gateway: fake credentials, path-style S3 (an IP endpoint)."""
        session = boto3.Session(region_name=str(self.state["region"]), **LOCAL_CREDENTIALS)
        config = CLIENT_CONFIG.merge(Config(s3={"addressing_style": "path"}))
        return Clients.from_session(session, endpoint_url=self.endpoint, config=config)

    def stack(self) -> StackInfo:
        stack = self.state["stack"]
        return StackInfo(
            name=stack["name"],
            state_machine_arn=stack["stateMachineArn"],
            run_state_table=stack["runStateTable"],
            output_location=stack["outputLocation"],
            validator_environment=dict(stack["validatorEnvironment"]),
            region=str(self.state["region"]),
        )

    def control(
        self, action: str, body: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Ask the background cloud for something only it can do (start Label Studio, ...)."""
        request = urllib.request.Request(
            f"{self.endpoint}/_localcloud/{action}",
            data=json.dumps(body or {}).encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            reason = json.loads(error.read() or b"{}").get("error", error.reason)
            doing = {"labelstudio": "start Label Studio", "review-images": "prepare the review's images"}
            raise OpsError(
                f"the local cloud could not {doing.get(action, action)}: {reason} "
                f"(its log: {self.folder / LOG_FILE})"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise OpsError(
                f"the local cloud at {self.endpoint} does not answer ({error}): "
                f"see {self.folder / LOG_FILE}, or `labeling-loop local down` and try again"
            ) from None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/_localcloud/health", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False


def _read_state(folder: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((folder / STATE_FILE).read_text()))
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(folder: Path | None = None) -> LocalCloud | None:
    """The background cloud if one is up and answering, else None (a stale state file is removed)."""
    folder = folder or default_dir()
    state = _read_state(folder)
    if not state or not state.get("endpoint"):
        return None
    cloud = LocalCloud(folder, state)
    if _alive(cloud.pid) and cloud.healthy():
        return cloud
    if not _alive(cloud.pid):
        (folder / STATE_FILE).unlink(missing_ok=True)
    return None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One command at a time starts or stops the background cloud."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _last_log_line(folder: Path) -> str:
    try:
        lines = [
            line for line in (folder / LOG_FILE).read_text(errors="replace").splitlines() if line.strip()
        ]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def up(
    console: Console,
    folder: Path | None = None,
    *,
    count: int = DEFAULT_COUNT,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[LocalCloud, bool]:
    """The background cloud, started if it is not up. Returns (cloud, started now)."""
    folder = folder or default_dir()
    missing = local_cloud_available()
    if missing:
        raise OpsError(
            f"--local needs the local cloud's packages ({missing} is missing): "
            "pip install -e '.[local]' in a clone of the repository (or `make venv`)"
        )
    with _locked(folder):
        cloud = running(folder)
        if cloud is not None:
            return cloud, False
        (folder / STATE_FILE).unlink(missing_ok=True)
        log = (folder / LOG_FILE).open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "labeling_ops.background", "--dir", str(folder), "--count", str(count)],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # it outlives this command and a Ctrl-C in this terminal
        )
        log.close()
        deadline = clock() + START_TIMEOUT_S
        with console.status("starting the local cloud") as status:
            while True:
                state = _read_state(folder) or {}
                if state.get("endpoint") and state.get("pid") == process.pid:
                    return LocalCloud(folder, state), True
                if process.poll() is not None:
                    raise OpsError(
                        f"the local cloud did not start ({_last_log_line(folder)}); "
                        f"its log: {folder / LOG_FILE}"
                    )
                if clock() > deadline:
                    _terminate(process.pid)
                    raise OpsError(
                        f"the local cloud did not start in {START_TIMEOUT_S:g} s: see {folder / LOG_FILE}"
                    )
                status.update(f"starting the local cloud: {state.get('phase', 'starting Python')}")
                time.sleep(0.2)


def _terminate(pid: int, grace: float = 120.0) -> bool:
    """SIGTERM, then wait for the process to end (it stops running executions first)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child (tests): reap it
                break
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def down(folder: Path | None = None) -> dict[str, Any] | None:
    """Stop the background cloud; return what its state said (None when none was running)."""
    folder = folder or default_dir()
    with _locked(folder):
        state = _read_state(folder)
        if not state or not state.get("pid") or not _alive(int(state["pid"])):
            (folder / STATE_FILE).unlink(missing_ok=True)
            return None
        _terminate(int(state["pid"]))
        (folder / STATE_FILE).unlink(missing_ok=True)
        return state


def labelstudio(cloud: LocalCloud, console: Console) -> dict[str, Any]:
    """Label Studio in the background cloud, started on first use: {url, username, password}."""
    if cloud.state.get("labelStudio"):
        return dict(cloud.state["labelStudio"])
    with console.status(
        "starting Label Studio (about a minute; the first time it is installed, a minute more)"
    ):
        server = cloud.control("labelstudio", timeout=600)
    cloud.state["labelStudio"] = server
    return server


# The same cloud in this process ------------------------------------------------------------------


@dataclass
class LocalSession:
    cloud: Any  # localcloud.engine.cloud.LocalCloud
    clients: Clients
    stack: StackInfo


def demo_images(count: int, data_dir: Path) -> tuple[Path, Path]:
    """Synthetic detection images and their truth manifest, generated once per count."""
    from localcloud.data.dataset import generate

    folder = data_dir / f"detection-{count}"
    manifest = folder / "truth.manifest"
    if not manifest.exists() or sum(1 for _ in manifest.open()) != count:
        if folder.exists():
            shutil.rmtree(folder)
        manifest = generate(folder, count, task="detection")
    return folder, manifest


@contextlib.contextmanager
def local_stack(
    count: int = DEFAULT_COUNT,
    time_scale: float = TIME_SCALE,
    data_dir: Path = Path(".localcloud") / "cli-data",
    labelstudio_url: str | None = None,
    model: Any = None,
) -> Iterator[LocalSession]:
    """A deployed local stack with `count` images and a stopped model, in this process. With
    `labelstudio_url`, the stack names that Label Studio (and a secret for its token) as a stack
    would that uses one; the server itself is started by whoever serves that URL. `model` (a
    CustomLabelsConfig) replaces the emulated model's speed and noise."""
    from labeling_loop.review.groundtruth.backend import GroundTruthBackend

    from localcloud.data.truth import load_truth, manifest_lines
    from localcloud.runner import default_config, local_cloud
    from localcloud.services.labelstudio.backend import stack_parameters

    images, manifest = demo_images(count, data_dir)
    os.environ.setdefault("LOCALCLOUD_LOG_LEVEL", "ERROR")  # the functions' logs stay quiet
    config = default_config(time_scale=time_scale)
    if model is not None:
        config.rekognition = model
    with local_cloud(config) as cloud:
        # The truth first: the model is trained on its labels, which its project's dataset lists and
        # the first state reads (runs started with no `labels` offer those).
        images_uri = f"s3://{cloud.config.images_bucket}/{IMAGES_PREFIX}"
        cloud.add_truth(load_truth(manifest_lines(manifest), images_uri))
        model_arn = cloud.add_model("detection")
        parameters = {"ProjectVersionArn": model_arn, "ImagesPrefix": IMAGES_PREFIX}
        if labelstudio_url:
            parameters.update(stack_parameters(cloud, labelstudio_url, token="not-started-yet"))
            parameters["ReviewBackend"] = GroundTruthBackend.name  # Label Studio when a run asks for it
        stack = cloud.deploy(parameters)
        cloud.upload_folder(images, IMAGES_PREFIX)
        region = cloud.config.region
        clients = Clients(
            sfn=cloud.sfn,
            s3=cloud.s3,
            dynamodb=cloud.dynamodb,
            rekognition=boto3.client("rekognition", region_name=region),
            sagemaker=boto3.client("sagemaker", region_name=region),
            region=region,
        )
        info = StackInfo(
            name=cloud.config.stack_name,
            state_machine_arn=stack.state_machine_arn,
            run_state_table=stack.table,
            output_location=f"s3://{stack.output_bucket}/{stack.parameters['OutputPrefix']}/",
            validator_environment=dict(stack.functions["ValidateInputFunction"].environment),
            region=region,
        )
        yield LocalSession(cloud, clients, info)
