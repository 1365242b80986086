"""A file-backed stand-in for the boto3 S3 client, for benchmarks of the streaming data steps.

Why not moto: moto's in-process S3 keeps objects in Python memory and its get_object builds the
whole object in memory before the caller reads a byte, and tracemalloc then counts moto's copies as
the caller's. AWS S3 streams a GET: the caller holds one read buffer at a time. Here every object is
a file under a temporary directory, so a GET opens the file and the caller's reads come straight
from disk, as they come from the socket on AWS.

Only what the data steps call is implemented (layer/labeling_loop/: kernel/jsonl.py,
review/selection.py, review/groundtruth/, finishing/finish.py, inference/listing.py):

- get_object(Bucket, Key) -> {"Body": botocore StreamingBody over the open file, "ContentLength", ...}
  (the same StreamingBody class boto3 returns, so read(), iter_lines(), iter_chunks() and close()
  behave, and cost, as they do against AWS); a missing key raises `exceptions.NoSuchKey`
- put_object(Bucket, Key, Body=bytes|str|file, ContentType=...)
- upload_fileobj(fileobj, bucket, key, ExtraArgs=...) copies in 1 MiB chunks (note: boto3's
  s3transfer, which this replaces, holds up to max_concurrency x multipart_chunksize in memory
  while it uploads a file above 8 MB; that buffer is not measured here)
- head_object(Bucket, Key) (ClientError code "404" when missing, as botocore raises it)
- get_paginator("list_objects_v2").paginate(Bucket, Prefix) -> pages of {"Contents": [{"Key",
  "Size"}]} in key order, 1,000 keys a page

Objects live in <root>/<bucket>/<quoted key>.obj (one flat directory per bucket, so a key and a
"directory" of the same name never clash); writes go to a temporary file renamed into place, so a
reader never sees half an object. Several processes may share one root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from botocore.exceptions import ClientError
from botocore.response import StreamingBody

CHUNK = 1024 * 1024
PAGE = 1000
_SUFFIX = ".obj"
_META = ".meta"


class NoSuchKey(ClientError):
    """Raised like botocore's modeled `S3.Client.exceptions.NoSuchKey` (a ClientError)."""


class NoSuchBucket(ClientError):
    pass


class _Exceptions:
    NoSuchKey = NoSuchKey
    NoSuchBucket = NoSuchBucket
    ClientError = ClientError


def _error(cls: type[ClientError], code: str, message: str, operation: str, status: int) -> ClientError:
    return cls(
        {
            "Error": {"Code": code, "Message": message},
            # What botocore puts in every response's metadata (its error type requires them all).
            "ResponseMetadata": {
                "RequestId": "",
                "HostId": "",
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        operation,
    )


class FileS3:
    """The subset of boto3's S3 client the data steps use, objects stored as files under `root`."""

    exceptions = _Exceptions

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:
            self._tmp: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
                prefix="fake-s3-"
            )
            root = self._tmp.name
        else:
            self._tmp = None
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------------------------------------
    # paths

    def create_bucket(self, Bucket: str, **_: Any) -> dict[str, Any]:
        (self.root / Bucket).mkdir(parents=True, exist_ok=True)
        return {"Location": f"/{Bucket}"}

    def _bucket(self, bucket: str, operation: str) -> Path:
        path = self.root / bucket
        if not path.is_dir():
            raise _error(NoSuchBucket, "NoSuchBucket", "The specified bucket does not exist", operation, 404)
        return path

    @staticmethod
    def _name(key: str) -> str:
        name = quote(key, safe="")
        if len(name) > 200:  # file-name limit: long keys by hash (their listing keeps the key in .meta)
            name = "~" + hashlib.sha256(key.encode()).hexdigest()
        return name

    def _path(self, bucket: str, key: str, operation: str) -> Path:
        return self._bucket(bucket, operation) / (self._name(key) + _SUFFIX)

    def _key_of(self, path: Path) -> str:
        stem = path.name[: -len(_SUFFIX)]
        if stem.startswith("~"):
            return json.loads(path.with_name(stem + _META).read_text())["Key"]
        return unquote(stem)

    def _write(self, bucket: str, key: str, fill: Any, content_type: str | None, operation: str) -> None:
        target = self._path(bucket, key, operation)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
            meta = {"Key": key, "ContentType": content_type or "binary/octet-stream"}
            target.with_name(target.name[: -len(_SUFFIX)] + _META).write_text(json.dumps(meta))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ---------------------------------------------------------------------------------------------
    # operations

    def put_object(
        self, Bucket: str, Key: str, Body: Any = b"", ContentType: str | None = None, **_: Any
    ) -> dict[str, Any]:
        def fill(out: Any) -> None:
            if isinstance(Body, str):
                out.write(Body.encode("utf-8"))
            elif isinstance(Body, bytes | bytearray | memoryview):
                out.write(Body)
            else:
                shutil.copyfileobj(Body, out, CHUNK)

        self._write(Bucket, Key, fill, ContentType, "PutObject")
        return {"ETag": '"fake"'}

    def upload_fileobj(
        self, Fileobj: Any, Bucket: str, Key: str, ExtraArgs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        content_type = (ExtraArgs or {}).get("ContentType")
        self._write(
            Bucket, Key, lambda out: shutil.copyfileobj(Fileobj, out, CHUNK), content_type, "PutObject"
        )

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        path = self._path(Bucket, Key, "GetObject")
        try:
            raw = open(path, "rb")
        except FileNotFoundError:
            raise _error(
                NoSuchKey, "NoSuchKey", "The specified key does not exist.", "GetObject", 404
            ) from None
        size = os.fstat(raw.fileno()).st_size
        return {
            "Body": StreamingBody(raw, size),
            "ContentLength": size,
            "ContentType": self._meta(path).get("ContentType", "binary/octet-stream"),
        }

    def head_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        path = self._path(Bucket, Key, "HeadObject")
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise _error(ClientError, "404", "Not Found", "HeadObject", 404) from None
        return {
            "ContentLength": size,
            "ContentType": self._meta(path).get("ContentType", "binary/octet-stream"),
        }

    def _meta(self, path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.with_name(path.name[: -len(_SUFFIX)] + _META).read_text())
        except FileNotFoundError:
            return {}

    def list_objects_v2(
        self, Bucket: str, Prefix: str = "", StartAfter: str = "", MaxKeys: int = PAGE, **_: Any
    ) -> dict[str, Any]:
        bucket = self._bucket(Bucket, "ListObjectsV2")
        keys = sorted(
            (self._key_of(p), p)
            for p in bucket.iterdir()
            if p.name.endswith(_SUFFIX) and not p.name.startswith(".")
        )
        selected = [(k, p) for k, p in keys if k.startswith(Prefix) and k > StartAfter][: MaxKeys + 1]
        page = selected[:MaxKeys]
        out: dict[str, Any] = {
            "KeyCount": len(page),
            "IsTruncated": len(selected) > MaxKeys,
            "Prefix": Prefix,
        }
        if page:
            out["Contents"] = [{"Key": k, "Size": p.stat().st_size} for k, p in page]
        return out

    def get_paginator(self, operation: str) -> _ListPaginator:
        if operation != "list_objects_v2":
            raise NotImplementedError(f"fake S3 has no paginator for {operation}")
        return _ListPaginator(self)


class _ListPaginator:
    def __init__(self, s3: FileS3) -> None:
        self._s3 = s3

    def paginate(self, Bucket: str, Prefix: str = "", **_: Any) -> Iterator[dict[str, Any]]:
        after = ""
        while True:
            page = self._s3.list_objects_v2(Bucket=Bucket, Prefix=Prefix, StartAfter=after)
            yield page
            if not page["IsTruncated"]:
                return
            after = page["Contents"][-1]["Key"]


class CompletedLabelingJobs:
    """SageMaker's DescribeLabelingJob for jobs that completed (the only SageMaker call
    groundtruth.collect makes), shaped as botocore returns it; OutputDatasetS3Uri is where Ground
    Truth writes the output manifest: <outputUri><job>/manifests/output/output.manifest."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self._jobs = {j["jobName"]: j for j in jobs}

    def describe_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
        job = self._jobs.get(LabelingJobName)
        if job is None:
            raise _error(
                ClientError, "ResourceNotFound", f"Could not find labeling job {LabelingJobName}",
                "DescribeLabelingJob", 400,
            )  # fmt: skip
        out = job["outputUri"].rstrip("/") + f"/{LabelingJobName}/manifests/output/output.manifest"
        return {
            "LabelingJobName": LabelingJobName,
            "LabelingJobStatus": "Completed",
            "LabelCounters": {
                "TotalLabeled": job.get("objectCount", 0),
                "HumanLabeled": job.get("objectCount", 0),
            },
            "LabelAttributeName": job.get("labelAttributeName"),
            "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": job["inputManifestUri"]}}},
            "OutputConfig": {"S3OutputPath": job["outputUri"]},
            "LabelingJobOutput": {"OutputDatasetS3Uri": out},
        }
