"""The background local cloud behind `--local` (started by labeling_ops.local.up, stopped by
`labeling-loop local down` with SIGTERM):

    python -m labeling_ops.background --dir .localcloud/background --count 40

It deploys the local stack (labeling_ops.local.local_stack) in this process, serves it on a loopback
port (localcloud/engine/gateway.py), and writes what a command needs to reach it into the state
folder's `cloud.json`: the endpoint, the stack, and Label Studio's address and sign-in once started.
Its own log is `cloud.log` in the same folder (warnings and errors; the functions' logs stay quiet).

What only this process can do is asked over the gateway's `/_localcloud/...` paths:
`labelstudio` (start Label Studio, give the stack's secret its token), `people-review` (a run a
person reviews: the emulated reviewers leave it alone), `review-images` (a few of the images, with
their truth, under a prefix of their own, for a review a person does by hand).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from labeling_ops.local import DEFAULT_COUNT, IMAGES_PREFIX, STATE_FILE, TIME_SCALE, LocalSession, local_stack

LOG = logging.getLogger("labeling_ops.background")


class BackgroundCloud:
    """The state file, and the answers to the control paths."""

    def __init__(self, folder: Path, session: LocalSession, labelstudio_port: int, time_scale: float) -> None:
        self.folder = folder
        self.time_scale = time_scale
        self.session = session
        self.labelstudio_port = labelstudio_port
        self.people: set[str] = set()
        self.endpoint = ""
        self._labelstudio: Any = None  # LabelStudioServer once started
        self._labelstudio_process: Any = None
        self._lock = threading.Lock()
        self._review_prefixes: dict[int, str] = {}

    def labelstudio_server(self) -> Any:
        return self._labelstudio

    def control(self, method: str, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if action == "labelstudio":
            return 200, self.start_labelstudio()
        if action == "people-review":
            self.people.add(str(body["name"]))
            return 200, {"people": sorted(self.people)}
        if action == "review-images":
            return 200, {"images": self.review_images(int(body.get("count", 3)))}
        if action == "status":
            return 200, self.state()
        return 404, {"error": f"no control action {action!r}"}

    def start_labelstudio(self) -> dict[str, Any]:
        from localcloud.services.labelstudio.backend import store_token
        from localcloud.services.labelstudio.server import ensure_installed, start_labelstudio

        with self._lock:
            if self._labelstudio is None:
                ensure_installed()
                server, process = start_labelstudio(
                    self.folder / "labelstudio", port=self.labelstudio_port, s3_endpoint=self.endpoint
                )
                store_token(self.session.cloud, server.token)
                self._labelstudio, self._labelstudio_process = server, process
                self.write_state()
            return self._labelstudio_sign_in()

    def _labelstudio_sign_in(self) -> dict[str, Any]:
        server = self._labelstudio
        return {"url": server.url, "username": server.username, "password": server.password}

    def review_images(self, count: int) -> str:
        """The first `count` images and their truth under `review-<count>/`, once; its s3:// prefix."""
        cloud = self.session.cloud
        bucket = cloud.config.images_bucket
        with self._lock:
            if count not in self._review_prefixes:
                prefix = f"review-{count}/"
                listed = cloud.s3.list_objects_v2(Bucket=bucket, Prefix=IMAGES_PREFIX)["Contents"]
                for item in sorted(listed, key=lambda o: o["Key"])[:count]:
                    name = item["Key"].removeprefix(IMAGES_PREFIX)
                    cloud.s3.copy_object(
                        Bucket=bucket, Key=prefix + name, CopySource={"Bucket": bucket, "Key": item["Key"]}
                    )
                    truth = cloud.truth[f"s3://{bucket}/{item['Key']}"]
                    cloud.add_truth({f"s3://{bucket}/{prefix}{name}": truth})
                self._review_prefixes[count] = f"s3://{bucket}/{prefix}"
            return self._review_prefixes[count]

    def state(self) -> dict[str, Any]:
        stack = self.session.stack
        return {
            "pid": os.getpid(),
            "endpoint": self.endpoint,
            "region": self.session.clients.region,
            "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "stack": {
                "name": stack.name,
                "stateMachineArn": stack.state_machine_arn,
                "runStateTable": stack.run_state_table,
                "outputLocation": stack.output_location,
                "validatorEnvironment": stack.validator_environment,
            },
            "images": stack.run_defaults.get("images") if stack.run_defaults else None,
            "timeScale": self.time_scale,
            "labelStudio": self._labelstudio_sign_in() if self._labelstudio else None,
        }

    def write_state(self) -> None:
        write_state_file(self.folder, self.state())

    def stop_labelstudio(self) -> None:
        if self._labelstudio_process is not None:
            from localcloud.services.labelstudio.server import stop_labelstudio

            stop_labelstudio(self._labelstudio_process)


def write_state_file(folder: Path, state: dict[str, Any]) -> None:
    """Atomically: a command reading it never sees half a file."""
    temporary = folder / (STATE_FILE + ".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(folder / STATE_FILE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labeling_ops.background", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="the state folder")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="synthetic images to label")
    parser.add_argument("--time-scale", type=float, default=TIME_SCALE)
    args = parser.parse_args(argv)
    folder: Path = args.dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The interpreter logs every failed state with its whole parse tree: the run's error says it.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    os.environ["LOCALCLOUD_LOG_LEVEL"] = "ERROR"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def phase(text: str) -> None:
        write_state_file(folder, {"pid": os.getpid(), "phase": text})

    from localcloud.engine.gateway import Gateway
    from localcloud.services.labelstudio.backend import ReviewDesk
    from localcloud.services.labelstudio.server import free_port

    phase(f"generating {args.count} synthetic images and deploying template.yaml")
    labelstudio_port = free_port()
    with local_stack(
        args.count,
        args.time_scale,
        data_dir=folder / "data",
        labelstudio_url=f"http://127.0.0.1:{labelstudio_port}",
    ) as session:
        cloud = BackgroundCloud(folder, session, labelstudio_port, args.time_scale)
        gateway = Gateway(cloud.control).start()
        cloud.endpoint = gateway.url
        desk = ReviewDesk(session.cloud, cloud.labelstudio_server, cloud.people).start()
        cloud.write_state()
        LOG.warning("local cloud up at %s (pid %d)", gateway.url, os.getpid())
        try:
            stop.wait()
        finally:
            phase("stopping")
            desk.stop()
            cloud.stop_labelstudio()
            gateway.stop()
    (folder / STATE_FILE).unlink(missing_ok=True)
    LOG.warning("local cloud stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
