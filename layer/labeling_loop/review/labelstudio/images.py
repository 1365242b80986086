"""Image references every reviewer's browser can load, whatever the S3 key.

Label Studio resolves a task's `s3://bucket/key` through the project's S3 storage: it parses the
reference as a URL (urllib's `urlparse`: a `?` starts a query, tabs and line breaks are dropped,
white space around the whole reference is stripped) and redirects the browser to a presigned URL,
in whose path the browser resolves `.` and `..` segments away (docs/aws-facts.md §6.7). Every other
key (spaces, `#`, `%`, `+`, unicode) comes through. An image whose key would not is copied once into
the run's folder (`review/labelstudio-images/`) under a name that does, and reviewers are shown the
copy; the review task keeps its `source-ref`, so the answers still belong to the original image.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from labeling_loop.kernel.jsonl import JsonlWriter, read_jsonl
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

_EXTENSIONS = {".jpg", ".jpeg", ".png"}


def labelstudio_can_load(source_ref: str) -> bool:
    """Whether Label Studio's storage turns `source_ref` into a URL of that very object."""
    uri = S3Uri.parse(source_ref)
    parsed = urlparse(source_ref.strip(), allow_fragments=False)
    if parsed.netloc != uri.bucket or parsed.path.lstrip("/") != uri.key:
        return False
    return not any(segment in (".", "..") for segment in uri.key.split("/"))


def review_copy(layout: RunLayout, source_ref: str) -> S3Uri:
    """Where the run keeps the copy of an image Label Studio cannot load by its own key: a name of
    hex digits (the same for a retried step) and the image's extension."""
    suffix = source_ref.rsplit(".", 1)[-1].lower() if "." in source_ref.rsplit("/", 1)[-1] else ""
    extension = f".{suffix}" if f".{suffix}" in _EXTENSIONS else ""
    digest = hashlib.sha256(source_ref.encode("utf-8")).hexdigest()[:40]
    return layout.labelstudio_images.join(digest + extension)


def add_review_images(s3: S3Client, layout: RunLayout) -> int:
    """Give every review task whose image Label Studio cannot load a `reviewImage`: a copy in the
    run's folder. Rewrites review/tasks.jsonl only when there is one; returns how many."""
    if not any(not labelstudio_can_load(t["source-ref"]) for t in read_jsonl(s3, layout.review_tasks)):
        return 0
    copied = 0
    tasks = read_jsonl(s3, layout.review_tasks)  # streamed from one GET; the new file is uploaded at the end
    with JsonlWriter(s3, layout.review_tasks) as out:
        for task in tasks:
            ref = task["source-ref"]
            if not labelstudio_can_load(ref):
                source, copy = S3Uri.parse(ref), review_copy(layout, ref)
                s3.copy_object(
                    Bucket=copy.bucket, Key=copy.key, CopySource={"Bucket": source.bucket, "Key": source.key}
                )
                task = {**task, "reviewImage": str(copy)}
                copied += 1
            out.write(task)
    return copied
