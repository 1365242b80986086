"""S3 URIs (`s3://bucket/key`), parsed and built in one place."""

from __future__ import annotations

from dataclasses import dataclass

_BUCKET_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        """Parse `s3://bucket/key`; raise ValueError saying what is wrong."""
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise ValueError("must be an S3 URI of the form s3://bucket/prefix")
        bucket, _, key = uri[5:].partition("/")
        # Bucket naming rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
        if not 3 <= len(bucket) <= 63 or not set(bucket) <= _BUCKET_CHARS:
            raise ValueError(f"bucket name {bucket!r} is not a valid S3 bucket name")
        if bucket[0] in ".-" or bucket[-1] in ".-" or ".." in bucket:
            raise ValueError(f"bucket name {bucket!r} is not a valid S3 bucket name")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Uri:
        key = self.key
        for part in parts:
            key = f"{key.rstrip('/')}/{part.lstrip('/')}" if key else part.lstrip("/")
        return S3Uri(self.bucket, key)

    def as_prefix(self) -> S3Uri:
        """The same location with exactly one trailing slash (empty key stays empty)."""
        return S3Uri(self.bucket, self.key.rstrip("/") + "/" if self.key.strip("/") else "")


def source_ref(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"
