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
from typing import TYPE_CHECKING, Any

from labeling_loop.inference import claims
from labeling_loop.inference.images import MAX_BYTES
from labeling_loop.kernel.deferral import defer_record
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.jsonl import JsonlWriter
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.kernel.s3_uri import S3Uri, source_ref

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_s3.type_defs import ObjectTypeDef

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


def classify(s3: S3Client, bucket: str, key: str) -> str:
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


def _objects(s3: S3Client, images: S3Uri, exclude_prefix: str | None) -> Iterator[ObjectTypeDef]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=images.bucket, Prefix=images.key):
        for obj in page.get("Contents", []):
            if exclude_prefix and obj["Key"].startswith(exclude_prefix):
                continue
            yield obj


@dataclass(frozen=True)
class ListingSettings:
    """What the listing reads of a run's configuration, built once."""

    images: S3Uri
    layout: RunLayout
    output_prefix: S3Uri
    run_id: str
    incremental: bool
    claim_seconds: int
    max_images: int

    @classmethod
    def from_config(cls, config: RunConfig) -> ListingSettings:
        return cls(
            images=S3Uri.parse(config.images),
            layout=config.layout(),
            output_prefix=S3Uri.parse(config.output),
            run_id=config.runId,
            incremental=config.incremental,
            # A claim outlives the longest run this configuration allows, then lapses by itself.
            claim_seconds=config.longest_run_seconds,
            max_images=config.maxImagesPerRun,
        )


def list_images(
    s3: S3Client,
    dynamodb: DynamoDBClient | None,
    table: str | None,
    settings: ListingSettings,
    now: float | None = None,
) -> ListingResult:
    """Write inventory.jsonl, listing skips and listing deferrals; return counts only. Raises
    InvalidInput when the prefix holds no JPEG or PNG image this run could infer."""
    now = time.time() if now is None else now
    result = ListingResult()
    candidates, objects = _candidates(s3, settings, result)
    if not candidates:
        # Before any claim: an incremental run over labeled images has candidates, and nothing to do.
        raise InvalidInput(no_images_message(settings.images, objects, result.kinds))
    if settings.incremental and dynamodb is not None and table:
        candidates = _claim(dynamodb, table, settings, candidates, result, now)
    candidates, over = _within_limit(candidates, settings.max_images)
    _defer_over_limit(s3, settings, over, dynamodb if settings.incremental else None, table, int(now))
    result.deferred_at_listing = len(over)
    with JsonlWriter(s3, settings.layout.inventory) as inventory:
        inventory.write_all(candidates)
    result.images_to_infer = len(candidates)
    return result


def _excluded_prefix(images: S3Uri, output_prefix: S3Uri) -> str | None:
    # Never label the workflow's own outputs when they live under the images prefix.
    # Only a run folder strictly inside the images prefix is excluded: an output prefix at or above
    # the images prefix would otherwise hide every image.
    inside = output_prefix.key.startswith(images.key) and output_prefix.key != images.key
    return (
        output_prefix.key if output_prefix.bucket == images.bucket and output_prefix.key and inside else None
    )


def _candidates(
    s3: S3Client, settings: ListingSettings, result: ListingResult
) -> tuple[list[dict[str, Any]], int]:
    """(the images this run could infer, how many objects were listed); the others are counted on
    `result` and the unsupported or too large ones written as listing skips."""
    images = settings.images
    exclude = _excluded_prefix(images, settings.output_prefix)
    candidates: list[dict[str, Any]] = []
    objects = 0
    with JsonlWriter(s3, settings.layout.skipped_part("listing", 0)) as skipped:
        for obj in _objects(s3, images, exclude):
            objects += 1
            kind = classify(s3, images.bucket, obj["Key"])
            if kind == "ignore" or (kind != "image" and obj["Key"].endswith(RUN_FILE_SUFFIXES)):
                result.objects_ignored += 1
                result.kinds[_kind(obj["Key"], "folder" if obj["Key"].endswith("/") else "not an image")] += 1
                continue
            ref = source_ref(images.bucket, obj["Key"])
            result.images_listed += 1
            skip = _listing_skip(kind, obj)
            if skip is not None:
                reason, detail, kind_label = skip
                skipped.write({"source-ref": ref, "stage": "listing", "reason": reason, "detail": detail})
                result.skipped_at_listing += 1
                result.kinds[_kind(obj["Key"], kind_label)] += 1
                continue
            candidates.append(
                {"source-ref": ref, "key": obj["Key"], "size": obj["Size"], "etag": obj.get("ETag", "")}
            )
    return candidates, objects


def _listing_skip(kind: str, obj: ObjectTypeDef) -> tuple[str, str, str] | None:
    """(reason, detail, kind counted) of an image skipped at listing, or None."""
    if kind == "unsupported":
        return "unsupported-format", "Custom Labels accepts PNG and JPEG images only", "unsupported"
    if obj["Size"] > MAX_BYTES:
        # Judged on the listed size: not a byte of a multi-GB upload is read.
        return (
            "image-too-large",
            f"{obj['Size']} bytes; the limit is {MAX_BYTES} bytes (15 MB)",
            "over 15 MB",
        )
    return None


def _claim(
    dynamodb: DynamoDBClient,
    table: str,
    settings: ListingSettings,
    candidates: list[dict[str, Any]],
    result: ListingResult,
    now: float,
) -> list[dict[str, Any]]:
    """The candidates this run could claim (incremental runs), those an earlier run deferred marked."""
    outcomes = dict(
        claims.claim_many(
            dynamodb,
            table,
            (c["source-ref"] for c in candidates),
            settings.run_id,
            int(now),
            int(now + settings.claim_seconds),
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
    return candidates


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
    s3: S3Client,
    settings: ListingSettings,
    over: list[dict[str, Any]],
    dynamodb: DynamoDBClient | None,
    table: str | None,
    now: int,
) -> None:
    """Listing deferrals, and (incremental runs) their claims deferred at once: the next run may
    take them even if this one fails."""
    max_images, layout, run_id = settings.max_images, settings.layout, settings.run_id
    detail = f"a run takes at most {max_images:,} images (maxImagesPerRun); the next run takes them first"
    with JsonlWriter(s3, layout.deferred_part("listing", 0)) as deferred:
        deferred.write_all(
            defer_record(c["source-ref"], "listing", "over-manifest-limit", detail) for c in over
        )
    if dynamodb is not None and table and over:
        claims.for_each(
            lambda c: claims.defer(dynamodb, table, c["source-ref"], run_id, "over-manifest-limit", now), over
        )
