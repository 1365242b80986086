"""The Label Studio backend in the local cloud: a real server on loopback, its token in (moto's)
Secrets Manager, images served from the local S3 through moto's server, and emulated reviewers who
answer the run's project once the workflow has created it."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from labeling_loop.kernel.jsonl import read_json
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.labelstudio.client import LabelStudioClient
from moto.server import ThreadedMotoServer

from localcloud.data.truth import Truth
from localcloud.services.labelstudio.reviewers import ReviewStats, annotate_project
from localcloud.services.labelstudio.server import LabelStudioServer, running_labelstudio
from localcloud.services.reviewer_model import DEMO

LOG = logging.getLogger(__name__)
SECRET_NAME = "labeling-loop/label-studio-token"


@contextlib.contextmanager
def labelstudio_with_local_s3(workdir: Path) -> Iterator[LabelStudioServer]:
    """Moto's S3 on loopback (it serves the in-process mock's state while a LocalCloud is active)
    and a Label Studio server that reads images from it."""
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    try:
        host, port = moto_server.get_host_and_port()
        with running_labelstudio(workdir, s3_endpoint=f"http://{host}:{port}") as server:
            yield server
    finally:
        moto_server.stop()


def deploy_parameters(cloud: Any, server: LabelStudioServer) -> dict[str, str]:
    """Store the token as a user would (Secrets Manager) and point the stack at the server, which
    listens on plain http on loopback: the stack names that host as the one http may reach."""
    return {"ReviewBackend": "labelstudio", **stack_parameters(cloud, server.url, server.token)}


def stack_parameters(cloud: Any, url: str, token: str) -> dict[str, str]:
    """The token in a secret, and the stack parameters naming the server and the secret."""
    secrets = boto3.client("secretsmanager", region_name=cloud.config.region)
    arn = secrets.create_secret(Name=SECRET_NAME, SecretString=token)["ARN"]
    return {
        "LabelStudioUrl": url,
        "LabelStudioHttpHost": urlsplit(url).hostname or "",
        "LabelStudioTokenSecretArn": arn,
    }


def store_token(cloud: Any, token: str) -> None:
    """A new token for the stack's secret (the server was started after the stack was deployed)."""
    secrets = boto3.client("secretsmanager", region_name=cloud.config.region)
    secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=token)


def truth_for_reviewers(truth: dict[str, Truth]) -> dict[str, dict[str, Any]]:
    """The ground truth in the reviewers' terms (see `reviewers`)."""
    return {
        ref: {
            "boxes": [b.as_dict() for b in t.boxes],
            "labels": list(t.labels),
            "width": t.width,
            "height": t.height,
        }
        for ref, t in truth.items()
    }


@dataclass
class EmulatedReviewers:
    """Wait for the run's Label Studio project (review/labelstudio.json), then answer its tasks."""

    cloud: Any
    server: LabelStudioServer
    accuracy: float = DEMO.accuracy
    jitter_px: float = DEMO.jitter_px
    unannotated_fraction: float = 0.0
    skipped_fraction: float = 0.0
    seed: int = 0
    timeout: float = 600.0
    stats: ReviewStats | None = None
    error: BaseException | None = None
    run_prefix: str = field(init=False, default="")
    finished: threading.Event = field(init=False, default_factory=threading.Event)  # answered, or failed
    _thread: threading.Thread = field(init=False)

    def start(self, run_prefix: str) -> None:
        """Start answering the run whose folder is `run_prefix` (known once its execution started)."""
        self.run_prefix = run_prefix
        self._thread = threading.Thread(target=self._run, name="label-studio-reviewers", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _state(self) -> dict[str, Any] | None:
        s3 = self.cloud.s3
        try:
            state: dict[str, Any] = read_json(s3, S3Uri.parse(self.run_prefix + "review/labelstudio.json"))
        except s3.exceptions.NoSuchKey:
            return None
        return state

    def _run(self) -> None:
        try:
            deadline = time.monotonic() + self.timeout
            state = None
            while state is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("the run never created its Label Studio project")
                time.sleep(0.2)
                state = self._state()
            client = LabelStudioClient(self.server.url, self.server.token)
            self.stats = annotate_project(
                client,
                int(state["projectId"]),
                truth_for_reviewers(self.cloud.truth),
                accuracy=self.accuracy,
                jitter_px=self.jitter_px,
                seed=self.seed,
                unannotated_fraction=self.unannotated_fraction,
                skipped_fraction=self.skipped_fraction,
            )
        except BaseException as error:  # reported to the test/CLI, never lost in a thread
            LOG.exception("emulated reviewers failed")
            self.error = error
        finally:
            self.finished.set()

    def hold_checks_until_answered(self, spec: Any, payload: Any, count: int) -> None:
        """A Lambda hook (LambdaRuntime.fault_hooks) that holds each progress check of the review
        until these reviewers have given every answer they will give, and injects nothing. The
        reviewers race the run's real clock otherwise: on a loaded machine they may still be
        answering when a short `reviewDeadlineHours` passes, and which tasks the run finds
        unanswered would depend on the machine's speed, not on what the reviewers did."""
        if spec.logical_id == "LabelStudioReviewFunction" and (payload or {}).get("action") == "check":
            self.finished.wait(self.timeout)


class ReviewDesk:
    """Emulated reviewers for a cloud that lives on (the background cloud of `--local`): every
    `labelstudio` run of the stack gets its own `EmulatedReviewers` once it has started, except the
    runs named in `people` (a person reviews those, in the browser)."""

    def __init__(
        self,
        cloud: Any,
        server: Any,  # () -> LabelStudioServer | None: Label Studio starts on first use
        people: set[str],
        poll_seconds: float = 0.5,
    ) -> None:
        self.cloud = cloud
        self.server = server
        self.people = people
        self.poll_seconds = poll_seconds
        self.reviewers: dict[str, EmulatedReviewers] = {}  # execution name -> its reviewers
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="label-studio-desk", daemon=True)

    def start(self) -> ReviewDesk:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        from labeling_loop.kernel.run_input import run_id_for

        from localcloud.runner import run_prefix_of

        while not self._stop.wait(self.poll_seconds):
            server, stack = self.server(), self.cloud.stack
            if server is None or stack is None:
                continue
            try:
                running = self.cloud.sfn.list_executions(
                    stateMachineArn=stack.state_machine_arn, statusFilter="RUNNING"
                )["executions"]
                for execution in running:
                    name = execution["name"]
                    if name in self._seen:
                        continue
                    prefix = run_prefix_of(stack, run_id_for(name, execution["executionArn"]))
                    config = self._config(prefix)
                    if config is None:
                        continue  # not validated yet
                    self._seen.add(name)
                    if config.get("reviewBackend") == "labelstudio" and name not in self.people:
                        reviewers = EmulatedReviewers(self.cloud, server, timeout=3600)
                        reviewers.start(prefix)
                        self.reviewers[name] = reviewers
            except Exception:  # the desk goes on; the run's own deadline ends a review nobody answers
                LOG.exception("the emulated reviewers' desk failed to look at the runs")

    def _config(self, run_prefix: str) -> dict[str, Any] | None:
        try:
            return dict(read_json(self.cloud.s3, S3Uri.parse(run_prefix + "config.json")))
        except self.cloud.s3.exceptions.NoSuchKey:
            return None
