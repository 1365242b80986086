"""After the fan-out: did inference work? Skips for the images' own faults (corrupt, too large...)
are normal; skips that say the run could not infer (Rekognition cannot read the bucket, the service
refused after retries) are not. A run where more than a tenth of its images were lost that way
fails here, before anyone is asked to review, with the cause and the fix, instead of succeeding
with a manifest that silently lacks them."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from labeling_loop.inference.detect import UNREADABLE
from labeling_loop.kernel.errors import InferenceFailedError
from labeling_loop.kernel.jsonl import read_jsonl_prefix
from labeling_loop.kernel.layout import RunLayout

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

SERVICE_ERROR = "service-error"
MAX_LOST_FRACTION = 0.10


def skips_by_reason(s3: S3Client, layout: RunLayout) -> Counter[str]:
    return Counter(
        str(record.get("reason"))
        for record in read_jsonl_prefix(s3, layout.skipped_prefix)
        if record.get("stage") == "inference"
    )


def check_outcome(
    s3: S3Client, layout: RunLayout, *, images_to_infer: int, images: str, region: str
) -> dict[str, int]:
    """Counts of inference skips by reason; InferenceFailedError when too many images were lost."""
    reasons = skips_by_reason(s3, layout)
    unreadable, refused = reasons[UNREADABLE], reasons[SERVICE_ERROR]
    if images_to_infer and unreadable + refused > MAX_LOST_FRACTION * images_to_infer:
        details = f"see {layout.skipped_prefix}inference-*.jsonl"
        if unreadable >= refused:
            raise InferenceFailedError(
                f"images: Rekognition could not read {unreadable} of {images_to_infer} images under "
                f"{images} (InvalidS3ObjectException or access denied). The bucket must be in the "
                f"model's region ({region}), and the DetectLabels function's role must be able to read "
                "the objects: check the bucket policy, and for SSE-KMS objects the key policy "
                f"(kms:Decrypt); {details}"
            )
        raise InferenceFailedError(
            f"DetectCustomLabels refused {refused} of {images_to_infer} images after retries "
            "(throttling or service errors): the model had too little capacity for the calls in flight "
            f"or the service was failing; run again (incremental runs pick them up); {details}"
        )
    return dict(reasons)
