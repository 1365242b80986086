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
from labeling_loop.jsonl import read_json
from labeling_loop.review.labelstudio.client import LabelStudioClient
from labeling_loop.s3_uri import S3Uri
from moto.server import ThreadedMotoServer

from localcloud.data.truth import Truth
from localcloud.services.labelstudio.reviewers import ReviewStats, annotate_project
from localcloud.services.labelstudio.server import LabelStudioServer, running_labelstudio

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
    secrets = boto3.client("secretsmanager", region_name=cloud.config.region)
    arn = secrets.create_secret(Name=SECRET_NAME, SecretString=server.token)["ARN"]
    return {
        "ReviewBackend": "labelstudio",
        "LabelStudioUrl": server.url,
        "LabelStudioHttpHost": urlsplit(server.url).hostname or "",
        "LabelStudioTokenSecretArn": arn,
    }


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
    accuracy: float = 0.97
    unannotated_fraction: float = 0.0
    skipped_fraction: float = 0.0
    seed: int = 0
    timeout: float = 600.0
    stats: ReviewStats | None = None
    error: BaseException | None = None
    run_prefix: str = field(init=False, default="")
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
                seed=self.seed,
                unannotated_fraction=self.unannotated_fraction,
                skipped_fraction=self.skipped_fraction,
            )
        except BaseException as error:  # reported to the test/CLI, never lost in a thread
            LOG.exception("emulated reviewers failed")
            self.error = error
