"""List the images to label under an S3 prefix: inventory.jsonl, the images the fan-out infers (model
control plans its batches as slices of it once the model runs, inference.plan).

Custom Labels reads PNG and JPEG only (docs/aws-facts.md §1.4); the extension decides (any case), and objects
without one are asked for their content type. Other image formats are listed and skipped with a
reason, so the user sees them; non-image files (manifests, notes) are ignored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from labeling_loop.inference import claims
from labeling_loop.inference.images import MAX_BYTES
from labeling_loop.jsonl import JsonlWriter
from labeling_loop.layout import RunLayout
from labeling_loop.s3_uri import S3Uri, source_ref

SUPPORTED_EXTENSIONS = {".jpg", ".jpeg", ".png"}
SUPPORTED_CONTENT_TYPES = {"image/jpeg", "image/jpg", "image/png"}
OTHER_IMAGE_EXTENSIONS = {".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif", ".jp2"}
# Objects a run writes itself never count as images, even if the run folder is under the prefix.
RUN_FILE_SUFFIXES = (".jsonl", ".json", ".manifest", ".html")


@dataclass
class ListingResult:
    images_listed: int = 0
    images_to_infer: int = 0
    skipped_at_listing: int = 0
    already_claimed: int = 0
    objects_ignored: int = 0
    deferred_before: int = 0  # images an earlier run deferred, taken again by this one

    def to_dict(self) -> dict[str, int]:
        return {
            "imagesListed": self.images_listed,
            "imagesToInfer": self.images_to_infer,
            "skippedAtListing": self.skipped_at_listing,
            "alreadyClaimed": self.already_claimed,
            "objectsIgnored": self.objects_ignored,
            "deferredBefore": self.deferred_before,
        }


def _extension(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def classify(s3: Any, bucket: str, key: str) -> str:
    """'image', 'unsupported' or 'ignore' for one object."""
    if key.endswith("/"):
        return "ignore"
    ext = _extension(key)
    if ext in SUPPORTED_EXTENSIONS:
        return "image"
    if ext in OTHER_IMAGE_EXTENSIONS:
        return "unsupported"
    if ext == "":
        content_type = s3.head_object(Bucket=bucket, Key=key).get("ContentType", "").lower()
        if content_type in SUPPORTED_CONTENT_TYPES:
            return "image"
        if content_type.startswith("image/"):
            return "unsupported"
    return "ignore"


def _objects(s3: Any, images: S3Uri, exclude_prefix: str | None) -> Iterator[dict[str, Any]]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=images.bucket, Prefix=images.key):
        for obj in page.get("Contents", []):
            if exclude_prefix and obj["Key"].startswith(exclude_prefix):
                continue
            yield obj


def list_images(
    s3: Any,
    dynamodb: Any | None,
    table: str | None,
    *,
    images: S3Uri,
    layout: RunLayout,
    output_prefix: S3Uri,
    run_id: str,
    incremental: bool,
    claim_seconds: int,
    now: float | None = None,
) -> ListingResult:
    """Write inventory.jsonl and listing skips; return counts only."""
    now = time.time() if now is None else now
    result = ListingResult()
    # Never label the workflow's own outputs when they live under the images prefix.
    # Only a run folder strictly inside the images prefix is excluded: an output prefix at or above
    # the images prefix would otherwise hide every image.
    inside = output_prefix.key.startswith(images.key) and output_prefix.key != images.key
    exclude = (
        output_prefix.key if output_prefix.bucket == images.bucket and output_prefix.key and inside else None
    )
    candidates: list[dict[str, Any]] = []
    with JsonlWriter(s3, layout.skipped_part("listing", 0)) as skipped:
        for obj in _objects(s3, images, exclude):
            kind = classify(s3, images.bucket, obj["Key"])
            if kind == "ignore" or (kind != "image" and obj["Key"].endswith(RUN_FILE_SUFFIXES)):
                result.objects_ignored += 1
                continue
            ref = source_ref(images.bucket, obj["Key"])
            result.images_listed += 1
            if kind == "unsupported":
                skipped.write(
                    {
                        "source-ref": ref,
                        "stage": "listing",
                        "reason": "unsupported-format",
                        "detail": "Custom Labels accepts PNG and JPEG images only",
                    }
                )
                result.skipped_at_listing += 1
                continue
            if obj["Size"] > MAX_BYTES:
                # Judged on the listed size: not a byte of a multi-GB upload is read.
                skipped.write(
                    {
                        "source-ref": ref,
                        "stage": "listing",
                        "reason": "image-too-large",
                        "detail": f"{obj['Size']} bytes; the limit is {MAX_BYTES} bytes (15 MB)",
                    }
                )
                result.skipped_at_listing += 1
                continue
            candidates.append(
                {"source-ref": ref, "key": obj["Key"], "size": obj["Size"], "etag": obj.get("ETag", "")}
            )
    if incremental and dynamodb is not None and table:
        outcomes = dict(
            claims.claim_many(
                dynamodb,
                table,
                (c["source-ref"] for c in candidates),
                run_id,
                int(now),
                int(now + claim_seconds),
            )
        )
        taken = [c for c in candidates if not outcomes[c["source-ref"]].claimed]
        result.already_claimed = len(taken)
        # Images labeled or in flight elsewhere are not this run's: they are not listed at all.
        result.images_listed -= len(taken)
        candidates = [c for c in candidates if outcomes[c["source-ref"]].claimed]
        for candidate in candidates:
            # An image an earlier run deferred says so: the review plan takes it first.
            since = outcomes[candidate["source-ref"]].deferred_since
            if since is not None:
                candidate["deferredSince"] = since
                result.deferred_before += 1
    with JsonlWriter(s3, layout.inventory) as inventory:
        inventory.write_all(candidates)
    result.images_to_infer = len(candidates)
    return result
