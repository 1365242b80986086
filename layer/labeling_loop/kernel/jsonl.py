"""JSON Lines on S3, streamed: readers yield one record at a time and writers spool to a temporary
file, so memory stays flat however many images a run has."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from labeling_loop.kernel.s3_uri import S3Uri

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

JsonDict = dict[str, Any]


def dumps(record: JsonDict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def read_jsonl(s3: S3Client, uri: S3Uri, missing_ok: bool = False) -> Iterator[JsonDict]:
    """Yield the records of one JSON Lines object; nothing when it is absent and missing_ok."""
    try:
        body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
    except s3.exceptions.NoSuchKey:
        if missing_ok:
            return
        raise
    for raw in body.iter_lines():
        if raw.strip():
            yield json.loads(raw)


def read_lines(s3: S3Client, uri: S3Uri) -> Iterator[bytes]:
    """The non-blank raw lines of one JSON Lines object, unparsed (a reader that skips most of them
    need not decode them)."""
    body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
    for raw in body.iter_lines():
        if raw.strip():
            yield raw


def read_jsonl_prefix(s3: S3Client, prefix: S3Uri) -> Iterator[JsonDict]:
    """Yield the records of every `.jsonl` object under a prefix, in key order."""
    for key in list_keys(s3, prefix):
        if key.endswith(".jsonl"):
            yield from read_jsonl(s3, S3Uri(prefix.bucket, key))


def list_keys(s3: S3Client, prefix: S3Uri) -> Iterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=prefix.bucket, Prefix=prefix.key):
        for obj in page.get("Contents", []):
            yield obj["Key"]


class JsonlWriter:
    """Write records to a spooled temporary file, upload on close. Use as a context manager."""

    def __init__(self, s3: S3Client, uri: S3Uri, content_type: str = "application/jsonl") -> None:
        self._s3 = s3
        self.uri = uri
        self._content_type = content_type
        self._file = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b")
        self.count = 0

    def write(self, record: JsonDict) -> None:
        self._file.write(dumps(record).encode("utf-8") + b"\n")
        self.count += 1

    def write_all(self, records: Iterable[JsonDict]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        self._file.seek(0)
        self._s3.upload_fileobj(
            self._file, self.uri.bucket, self.uri.key, ExtraArgs={"ContentType": self._content_type}
        )
        self._file.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._file.close()


def write_json(s3: S3Client, uri: S3Uri, document: Any) -> None:
    s3.put_object(
        Bucket=uri.bucket,
        Key=uri.key,
        Body=json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"),
        ContentType="application/json",
    )


def read_json(s3: S3Client, uri: S3Uri) -> Any:
    return json.loads(s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read())
