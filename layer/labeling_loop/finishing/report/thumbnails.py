"""Thumbnails of the images where model and people disagreed most, the model's boxes and the
reviewed boxes drawn in two colours, as `data:` URIs so report.html needs nothing else to show them.

Boxes are pixels of the displayed image (docs/data-contracts.md), so the image is turned by its
EXIF orientation before drawing, as Rekognition, Ground Truth and Label Studio show it."""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from labeling_loop.finishing.report.colours import PREDICTED_COLOUR, REVIEWED_COLOUR
from labeling_loop.inference.images import MAX_BYTES
from labeling_loop.kernel.s3_uri import S3Uri

logger = logging.getLogger(__name__)

THUMBNAIL_PX = 360
JPEG_QUALITY = 72


def _corners(box: Mapping[str, Any], scale: float) -> tuple[float, float, float, float] | None:
    """The box's corners, ordered, scaled to the thumbnail; None for a box that is not four finite
    numbers. A reviewed box is data people can edit: a negative width draws as the box it spans."""
    try:
        left, top, width, height = (float(box[k]) for k in ("left", "top", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (left, top, width, height)):
        return None
    xs, ys = sorted((left, left + width)), sorted((top, top + height))
    return xs[0] * scale, ys[0] * scale, xs[1] * scale, ys[1] * scale


def _draw(
    draw: ImageDraw.ImageDraw,
    boxes: Iterable[Any],
    scale: float,
    colour: tuple[int, int, int],
    width: int,
) -> None:
    for box in boxes:
        corners = _corners(box, scale) if isinstance(box, Mapping) else None
        if corners is not None:
            draw.rectangle(corners, outline=colour, width=width)


def thumbnail(s3: Any, item: Mapping[str, Any]) -> str | None:
    """A JPEG data URI of the image with the predicted (orange, thick) and reviewed (green, thin)
    boxes, or None when the image cannot be read."""
    try:
        ref = S3Uri.parse(str(item["source-ref"]))
        head = s3.head_object(Bucket=ref.bucket, Key=ref.key)
        if int(head.get("ContentLength", 0)) > MAX_BYTES:
            return None
        data = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except Exception:  # an image that cannot be read has no thumbnail; the report says so
        return None
    scale = min(1.0, THUMBNAIL_PX / max(image.width, image.height))
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    try:
        _draw(draw, item.get("predicted") or [], scale, PREDICTED_COLOUR, 4)
        _draw(draw, item.get("reviewed") or [], scale, REVIEWED_COLOUR, 2)
    except Exception:  # the image without its boxes rather than no report
        logger.warning("boxes not drawn on a thumbnail", exc_info=True, extra={"source-ref": str(ref)})
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
