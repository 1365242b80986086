"""List the images to label under an S3 prefix: inventory.jsonl, the images the fan-out infers (model
control plans its batches as slices of it once the model runs, inference.plan).

Custom Labels reads PNG and JPEG only (docs/aws-facts.md §1.4); the extension decides (any case), and objects
without one are asked for their content type. Other image formats are listed and skipped with a
reason, so the user sees them; non-image files (manifests, notes) are ignored.

A prefix with no image Custom Labels can read fails here (InvalidInput naming the prefix and what
it holds), before the model is started. A run takes at most `maxImagesPerRun` images, what one
manifest may hold (docs/aws-facts.md §2.3): the rest are deferred to the next run at listing, before
any work is spent on them, the images earlier runs deferred first (oldest first), then the others in
listing order.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.inference import claims
from labeling_loop.inference.images import MAX_BYTES
from labeling_loop.kernel.deferral import defer_record
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.jsonl import JsonlWriter
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri, source_ref

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
    deferred_at_listing: int = 0  # over maxImagesPerRun: put off to the next run
    # What the prefix holds besides images this run can infer, by kind: the message of an empty prefix.
    kinds: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, int]:
        return {
            "imagesListed": self.images_listed,
            "imagesToInfer": self.images_to_infer,
            "skippedAtListing": self.skipped_at_listing,
            "alreadyClaimed": self.already_claimed,
            "objectsIgnored": self.objects_ignored,
            "deferredBefore": self.deferred_before,
            "deferredAtListing": self.deferred_at_listing,
        }


def _extension(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _kind(key: str, why: str) -> str:
    """`.gif (unsupported)`, `(no extension) (not an image)`: one kind of object an empty prefix holds."""
    return f"{_extension(key) or '(no extension)'} ({why})"


def no_images_message(images: S3Uri, objects: int, kinds: Counter[str], shown: int = 6) -> str:
    """One line: the prefix, how many objects it holds and why each kind was not taken."""
    if not objects:
        return f"images: {images}: no JPEG or PNG image: no object under this prefix"
    parts = [f"{n:,} {kind}" for kind, n in kinds.most_common(shown)]
    rest = sum(kinds.values()) - sum(n for _, n in kinds.most_common(shown))
    if rest:
        parts.append(f"{rest:,} of other kinds")
    return f"images: {images}: no JPEG or PNG image: {objects:,} objects, " + ", ".join(parts)


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
    max_images: int,
    now: float | None = None,
) -> ListingResult:
    """Write inventory.jsonl, listing skips and listing deferrals; return counts only. Raises
    InvalidInput when the prefix holds no JPEG or PNG image this run could infer."""
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
    objects = 0
    with JsonlWriter(s3, layout.skipped_part("listing", 0)) as skipped:
        for obj in _objects(s3, images, exclude):
            objects += 1
            kind = classify(s3, images.bucket, obj["Key"])
            if kind == "ignore" or (kind != "image" and obj["Key"].endswith(RUN_FILE_SUFFIXES)):
                result.objects_ignored += 1
                result.kinds[_kind(obj["Key"], "folder" if obj["Key"].endswith("/") else "not an image")] += 1
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
                result.kinds[_kind(obj["Key"], "unsupported")] += 1
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
                result.kinds[_kind(obj["Key"], "over 15 MB")] += 1
                continue
            candidates.append(
                {"source-ref": ref, "key": obj["Key"], "size": obj["Size"], "etag": obj.get("ETag", "")}
            )
    if not candidates:
        # Before any claim: an incremental run over labeled images has candidates, and nothing to do.
        raise InvalidInput(no_images_message(images, objects, result.kinds))
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
    candidates, over = _within_limit(candidates, max_images)
    _defer_over_limit(
        s3, layout, over, max_images, dynamodb if incremental else None, table, run_id, int(now)
    )
    result.deferred_at_listing = len(over)
    with JsonlWriter(s3, layout.inventory) as inventory:
        inventory.write_all(candidates)
    result.images_to_infer = len(candidates)
    return result


def _within_limit(
    candidates: list[dict[str, Any]], max_images: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the images this run takes, the rest): the images earlier runs deferred first, oldest first,
    then the others in listing order. The inventory keeps listing order."""
    if len(candidates) <= max_images:
        return candidates, []
    order = sorted(
        range(len(candidates)),
        key=lambda i: (
            (0, candidates[i]["deferredSince"], i) if "deferredSince" in candidates[i] else (1, 0, i)
        ),
    )
    chosen = set(order[:max_images])
    return (
        [c for i, c in enumerate(candidates) if i in chosen],
        [c for i, c in enumerate(candidates) if i not in chosen],
    )


def _defer_over_limit(
    s3: Any,
    layout: RunLayout,
    over: list[dict[str, Any]],
    max_images: int,
    dynamodb: Any | None,
    table: str | None,
    run_id: str,
    now: int,
) -> None:
    """Listing deferrals, and (incremental runs) their claims deferred at once: the next run may
    take them even if this one fails."""
    detail = f"a run takes at most {max_images:,} images (maxImagesPerRun); the next run takes them first"
    with JsonlWriter(s3, layout.deferred_part("listing", 0)) as deferred:
        deferred.write_all(
            defer_record(c["source-ref"], "listing", "over-manifest-limit", detail) for c in over
        )
    if dynamodb is not None and table and over:
        claims.for_each(
            lambda c: claims.defer(dynamodb, table, c["source-ref"], run_id, "over-manifest-limit", now), over
        )
