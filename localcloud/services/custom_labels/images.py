"""How DetectCustomLabels reads and checks an image, like the service (docs/aws-facts.md §1.4):
`Bytes` or an S3 object, PNG or JPEG judged by content, at most 15 MB in S3 and 4 MB as `Bytes`,
64-4096 px per side of the displayed (EXIF-oriented) image, aspect ratio at most 20:1.

Emulator choice where AWS documents nothing: image dimensions outside 64-4096 px or an aspect ratio
above 20:1 answer InvalidParameterException "Request has invalid parameters": that is what
Rekognition image operations answer for an image below the minimum size (boto/botocore issue #1366,
DetectLabels); ImageTooLargeException is documented for the byte size (and for resolution only for
DetectProtectiveEquipment).
"""

from __future__ import annotations

import base64
import io
import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from PIL import Image, UnidentifiedImageError

from localcloud.data.imaging import displayed_size_of
from localcloud.services.base import ServiceError

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

log = logging.getLogger(__name__)

MAX_S3_IMAGE_BYTES = 15 * 1024 * 1024  # S3 object <= 15 MB
MAX_RAW_IMAGE_BYTES = 4 * 1024 * 1024  # Bytes <= 4 MB
MIN_SIDE, MAX_SIDE, MAX_ASPECT = 64, 4096, 20.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def read_image(s3: S3Client, image: dict[str, Any]) -> tuple[str | None, bytes]:
    """The request's `Image`: (its source-ref, or None for `Bytes`; the bytes)."""
    if ("Bytes" in image) == ("S3Object" in image):
        raise ServiceError("InvalidParameterException", "Request has invalid parameters")
    if "Bytes" in image:
        data = image["Bytes"]
        if isinstance(data, str):  # a base64 string, as the JSON wire form carries it
            data = base64.b64decode(data)
        if len(data) > MAX_RAW_IMAGE_BYTES:
            raise ServiceError("ImageTooLargeException", "Image size is too large.")
        return None, bytes(data)
    s3_object = image["S3Object"]
    bucket, key = s3_object.get("Bucket"), s3_object.get("Name")
    if not bucket or not key:
        raise ServiceError("InvalidParameterException", "Request has invalid parameters")
    extra = {"VersionId": s3_object["Version"]} if s3_object.get("Version") else {}
    try:
        response = s3.get_object(Bucket=bucket, Key=key, **extra)
    except ClientError as error:
        log.debug("S3 read of s3://%s/%s failed: %s", bucket, key, error)
        raise ServiceError(
            "InvalidS3ObjectException",
            "Unable to get object metadata from S3. Check object key, region and/or access permissions.",
        ) from error
    if response["ContentLength"] > MAX_S3_IMAGE_BYTES:
        response["Body"].close()
        raise ServiceError("ImageTooLargeException", "Image size is too large.")
    return f"s3://{bucket}/{key}", response["Body"].read()


def check_image(data: bytes) -> tuple[int, int]:
    """Validate like the service and return the displayed (EXIF-oriented) width and height."""
    if not (data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC)):
        raise ServiceError("InvalidImageFormatException", "Request has unsupported image format")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes the pixels: truncated or corrupt files fail here
            width, height = displayed_size_of(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ServiceError("InvalidImageFormatException", "Request has unsupported image format") from error
    short, long = min(width, height), max(width, height)
    if short < MIN_SIDE or long > MAX_SIDE or long / short > MAX_ASPECT:
        # Emulator choice, see the module docstring.
        raise ServiceError("InvalidParameterException", "Request has invalid parameters")
    return width, height
