"""What a labeling job writes, where and in which shape (docs/aws-facts.md §3.6): under
`<S3OutputPath>/<job name>/`, the worker responses and consolidation files under `annotations/`
and the output manifest under `manifests/output/`, each line the input line plus `<attr>` and
`<attr>-metadata`.

Emulator choice where AWS documents nothing: objects no worker labeled appear in the output
manifest with `<attr>-metadata.failure-reason` and without `<attr>`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from localcloud.data.truth import DETECTION_TYPE

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


class JobFailure(Exception):
    """The labeling work failed: the job ends Failed with this message as FailureReason."""


def now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _stamp_iso(stamp: datetime) -> str:
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class OutputFolder:
    """A job's output folder: s3://bucket/<prefix ending in "/<job name>/">."""

    s3: S3Client
    bucket: str
    prefix: str

    def put(self, key: str, body: str) -> str:
        """Write `body` at `<prefix><key>`; return its URI. An S3 error fails the job."""
        full_key = self.prefix + key
        try:
            self.s3.put_object(Bucket=self.bucket, Key=full_key, Body=body.encode("utf-8"))
        except ClientError as error:
            raise JobFailure(
                f"ClientError: Could not write s3://{self.bucket}/{full_key}: {error}"
            ) from error
        return f"s3://{self.bucket}/{full_key}"

    def worker_response(self, index: int, answers: list[tuple[str, Any]]) -> None:
        """annotations/worker-response/iteration-1/<dataset object id>/<timestamp>.json"""
        stamp = datetime.now(UTC)
        document = {
            "answers": [
                {
                    "acceptanceTime": _stamp_iso(stamp),
                    "answerContent": content,
                    "submissionTime": _stamp_iso(stamp),
                    # Emulator choice: 3-40 s per answer, as the Label Studio reviewers take, drawn
                    # from the worker and the object so that a retry gets the same figure.
                    "timeSpentInSeconds": _seconds(worker, index),
                    "workerId": worker,
                    "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "sub": worker}},
                }
                for worker, content in answers
            ]
        }
        when = stamp.strftime("%Y-%m-%d_%H:%M:%S")
        self.put(f"annotations/worker-response/iteration-1/{index}/{when}.json", json.dumps(document))

    def consolidation(self, kind: str, stamp: str, document: Any) -> str:
        """annotations/consolidated-annotation/consolidation-<kind>/iteration-1/<stamp>.json"""
        key = f"annotations/consolidated-annotation/consolidation-{kind}/iteration-1/{stamp}.json"
        return self.put(key, json.dumps(document))

    def manifest(self, lines: list[dict[str, Any]]) -> str:
        """manifests/output/output.manifest; returns its URI (LabelingJobOutput.OutputDatasetS3Uri)."""
        body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        return self.put("manifests/output/output.manifest", body)


def _seconds(worker: str, index: int) -> float:
    digest = hashlib.sha256(f"{worker}|{index}".encode()).digest()
    return round(3.0 + 37.0 * int.from_bytes(digest[:4], "big") / 2**32, 1)


def _metadata(job_name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """`fields`, then what the metadata of every labeled object carries."""
    return {
        **fields,
        "human-annotated": "yes",
        "creation-date": now_iso(),
        "job-name": f"labeling-job/{job_name}",
    }


def box_line(
    line: dict[str, Any],
    attribute: str,
    job_name: str,
    size: tuple[int, int],
    boxes: list[dict[str, Any]],
    labels: list[str],
    workers: int,
    adjustment_status: str | None = None,
) -> dict[str, Any]:
    """A bounding-box output line: the object-detection format of Custom Labels (§2.1), confidence
    0.00 with one worker; adjustment jobs add `adjustment-status` (§3.6)."""
    width, height = size
    class_ids = {label: labels.index(label) for label in labels}
    metadata = _metadata(
        job_name,
        {
            "objects": [{"confidence": 0.0 if workers == 1 else 0.9} for _ in boxes],
            "class-map": {str(class_ids[b["label"]]): b["label"] for b in boxes},
            "type": DETECTION_TYPE,
        },
    )
    if adjustment_status is not None:
        metadata["adjustment-status"] = adjustment_status
    return {
        **line,
        attribute: {
            "image_size": [{"width": width, "height": height, "depth": 3}],
            "annotations": [
                {"class_id": class_ids[b["label"]], **{k: b[k] for k in ("left", "top", "width", "height")}}
                for b in boxes
            ],
        },
        f"{attribute}-metadata": metadata,
    }


def custom_line(line: dict[str, Any], attribute: str, job_name: str, content: Any) -> dict[str, Any]:
    """A custom task's output line: the consolidation Lambda's content, `type: groundtruth/custom` (§3.5)."""
    return {
        **line,
        attribute: content,
        f"{attribute}-metadata": _metadata(job_name, {"type": "groundtruth/custom"}),
    }


def expired_line(line: dict[str, Any], attribute: str, job_name: str) -> dict[str, Any]:
    """An object whose task expired before any worker answered (emulator choice, see above)."""
    return {
        **line,
        f"{attribute}-metadata": {
            "retry-count": 1,
            "failure-reason": "ClientError: The task expired before a worker submitted an answer.",
            "human-annotated": "yes",
            "job-name": f"labeling-job/{job_name}",
            "creation-date": now_iso(),
        },
    }
