"""Inference of one image: read its header, call DetectCustomLabels, and make the prediction record,
or the skip record with a reason (a bad image never fails its batch). batch.py runs a batch of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labeling_loop.inference.images import HEADER_BYTES, MAX_BYTES, ImageRejected, check_limits, read_header
from labeling_loop.kernel.aws_clients import error_code
from labeling_loop.kernel.errors import ModelNotRunningError
from labeling_loop.kernel.s3_uri import S3Uri

if TYPE_CHECKING:
    from types_boto3_rekognition import RekognitionClient
    from types_boto3_s3 import S3Client

# DetectCustomLabels errors that say "this image", not "this service" (docs/aws-facts.md §1.4).
IMAGE_ERRORS = {
    "InvalidImageFormatException": "corrupt-image",
    "ImageTooLargeException": "image-too-large",
    "InvalidParameterException": "image-dimensions",
}
# "Rekognition is unable to access the S3 object" (docs/aws-facts.md §1.5): a bucket in another
# region, a bucket or KMS key policy that refuses the caller. Not the image's fault: recorded as
# `image-unreadable`, and a run where many images are (inference.outcome) fails, naming the fix.
UNREADABLE = "image-unreadable"
# S3's own refusals of the header read (a bucket or key policy, SSE-KMS without kms:Decrypt).
S3_ACCESS_ERRORS = {"AccessDenied", "403", "KMS.DisabledException"}
# Left after botocore's own retries (standard mode, 10 attempts): the image is skipped, the run goes on.
SERVICE_ERRORS = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "InternalServerError",
    "ServiceUnavailableException",
    "LimitExceededException",
}


def _skip(ref: str, reason: str, detail: str) -> dict[str, Any]:
    return {"source-ref": ref, "stage": "inference", "reason": reason, "detail": detail[:500]}


def header_of(s3: S3Client, ref: S3Uri) -> tuple[Any, int]:
    """Read just the first bytes of the object (a ranged GET) and parse the header from them. Never
    reads past MAX_BYTES: an object over the limit is skipped on its size alone."""
    response = s3.get_object(Bucket=ref.bucket, Key=ref.key, Range=f"bytes=0-{HEADER_BYTES - 1}")
    data = response["Body"].read()
    content_range = response.get("ContentRange", "")
    size = int(content_range.rsplit("/", 1)[-1]) if "/" in content_range else len(data)
    try:
        return read_header(data), size
    except Exception as error:  # ImageRejected, or Pillow's OSError("Truncated File Read") and kin
        # A header cut off by the first read (a huge EXIF block or ICC profile) is judged on the rest
        # of the object; a definite verdict (unsupported format, ...) or a complete read stands.
        definite = isinstance(error, ImageRejected) and error.reason != "corrupt-image"
        if definite or len(data) >= size:
            raise
        if size > MAX_BYTES:
            raise ImageRejected(
                "image-too-large", f"{size} bytes; the limit is {MAX_BYTES} bytes (15 MB)"
            ) from None
    rest = s3.get_object(Bucket=ref.bucket, Key=ref.key, Range=f"bytes={len(data)}-{size - 1}")["Body"].read()
    return read_header(data + rest), size


def predict_one(
    s3: S3Client, rekognition: RekognitionClient, ref: str, model_arn: str, min_confidence: float
) -> dict[str, Any]:
    """A prediction record (data contract) or a skip record (has a `reason`)."""
    uri = S3Uri.parse(ref)
    try:
        header, size = header_of(s3, uri)
        check_limits(header, size)
    except ImageRejected as rejected:
        return _skip(ref, rejected.reason, rejected.detail)
    except ClientError as error:
        code = error_code(error)
        if code in ("NoSuchKey", "404", "InvalidRange"):
            reason = "corrupt-image" if code == "InvalidRange" else "service-error"
            return _skip(ref, reason, f"S3 {code}: the object is empty or gone")
        if code in S3_ACCESS_ERRORS:
            return _skip(ref, UNREADABLE, f"S3 GetObject {code}: {error}")
        raise
    except Exception as error:  # Pillow raises many types for malformed headers
        return _skip(ref, "corrupt-image", f"{type(error).__name__}: {error}")
    try:
        response = rekognition.detect_custom_labels(
            ProjectVersionArn=model_arn,
            Image={"S3Object": {"Bucket": uri.bucket, "Name": uri.key}},
            MinConfidence=min_confidence,
        )
    except ClientError as error:
        code = error_code(error)
        if code == "ResourceNotReadyException":
            raise ModelNotRunningError(f"model {model_arn} is not RUNNING: {error}") from None
        if code in IMAGE_ERRORS:
            return _skip(ref, IMAGE_ERRORS[code], f"DetectCustomLabels {code}: {error}")
        if code == "InvalidS3ObjectException":
            return _skip(ref, UNREADABLE, f"DetectCustomLabels {code}: {error}")
        if code in SERVICE_ERRORS:
            return _skip(ref, "service-error", f"DetectCustomLabels {code} after retries")
        raise
    labels = []
    for label in response.get("CustomLabels", []):
        record: dict[str, Any] = {"name": label["Name"], "confidence": float(label["Confidence"])}
        box = (label.get("Geometry") or {}).get("BoundingBox")
        if box:
            record["box"] = {k.lower(): float(box[k]) for k in ("Left", "Top", "Width", "Height")}
        labels.append(record)
    return {
        "source-ref": ref,
        "image_size": {"width": header.width, "height": header.height, "depth": 3},
        "orientation": header.orientation,
        "labels": labels,
    }
