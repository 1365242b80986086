"""The fan-out's item list: `batches.json`, a JSON array of `{"batchId", "images"}` items that the
Distributed Map reads from S3 (one child execution per item). Streamed to a temporary file, so
memory stays flat however many images a run has."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from typing import IO, Any

from labeling_loop.layout import RunLayout


def write_batches(s3: Any, layout: RunLayout, refs: Iterable[str], images_per_batch: int) -> int:
    """Write batches.json of at most `images_per_batch` source-refs each; return how many batches."""
    count = 0
    with tempfile.TemporaryFile(mode="w+b") as spool:
        spool.write(b"[")
        batch: list[str] = []
        for ref in refs:
            batch.append(ref)
            if len(batch) == images_per_batch:
                _write_batch(spool, count, batch)
                count += 1
                batch = []
        if batch:
            _write_batch(spool, count, batch)
            count += 1
        spool.write(b"]")
        spool.seek(0)
        s3.upload_fileobj(
            spool, layout.batches.bucket, layout.batches.key, ExtraArgs={"ContentType": "application/json"}
        )
    return count


def _write_batch(spool: IO[bytes], batch_id: int, refs: list[str]) -> None:
    if batch_id:
        spool.write(b",")
    spool.write(json.dumps({"batchId": batch_id, "images": refs}, ensure_ascii=False).encode("utf-8"))
