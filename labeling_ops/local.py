"""`--local`: the same verbs against the local cloud (localcloud/), in this process.

The local cloud lives in one process (moto's mock is process-wide), so a local session is one
command: it deploys template.yaml, uploads synthetic images with their ground truth, registers a
stopped model as the stack's default (`ProjectVersionArn`, so `start` with no input works like a
console start with `{}`), then runs the verbs it is given, in order, against that cloud. Reviews
are answered by the emulated Ground Truth annotators.

    labeling-loop local                          # the tour: every verb once
    labeling-loop local "start --follow" "list"  # your own sequence
    labeling-loop start --local --follow         # one verb: same as local "start --follow"
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from labeling_ops.aws import Clients, StackInfo

DATA_DIR = Path(".localcloud") / "cli-data"
IMAGES_PREFIX = "incoming/"
# Every verb once, in an order that works: a run to its end, then a second run stopped half way.
TOUR = [
    "start --name first-run --follow",
    "list",
    "show latest",
    "report first-run --out local-report",
    # a long model poll (3600 s, 7 s at the local time scale) keeps it waiting for the model
    "start --name second-run --min-confidence 60 --model-poll-seconds 3600",
    "follow second-run --updates 4",
    "stop second-run --wait 5",
    "list",
]


@dataclass
class LocalSession:
    cloud: Any  # localcloud.engine.cloud.LocalCloud
    clients: Clients
    stack: StackInfo


def demo_images(count: int, data_dir: Path = DATA_DIR) -> tuple[Path, Path]:
    """Synthetic detection images and their truth manifest, generated once per count."""
    from localcloud.data.dataset import generate

    folder = data_dir / f"detection-{count}"
    manifest = folder / "truth.manifest"
    if not manifest.exists() or sum(1 for _ in manifest.open()) != count:
        if folder.exists():
            shutil.rmtree(folder)
        manifest = generate(folder, count, task="detection")
    return folder, manifest


@contextmanager
def local_stack(
    count: int = 40, time_scale: float = 0.002, data_dir: Path = DATA_DIR
) -> Iterator[LocalSession]:
    """A deployed local stack with `count` images and a stopped model."""
    from localcloud.data.truth import load_truth, manifest_lines
    from localcloud.runner import default_config, local_cloud

    images, manifest = demo_images(count, data_dir)
    os.environ.setdefault("LOCALCLOUD_LOG_LEVEL", "ERROR")  # the functions' logs stay quiet
    with local_cloud(default_config(time_scale=time_scale)) as cloud:
        # The truth first: the model is trained on its labels, which its project's dataset lists and
        # the first state reads (runs started with no `labels` offer those).
        images_uri = f"s3://{cloud.config.images_bucket}/{IMAGES_PREFIX}"
        cloud.add_truth(load_truth(manifest_lines(manifest), images_uri))
        model_arn = cloud.add_model("detection")
        stack = cloud.deploy({"ProjectVersionArn": model_arn, "ImagesPrefix": IMAGES_PREFIX})
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
