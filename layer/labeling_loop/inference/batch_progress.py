"""How far a batch is while it runs: one small object per batch, `progress/batch-<id>.json` in the run
folder, rewritten by the DetectLabels batch every few seconds (or every few dozen images) and at the
end of each invocation. `labeling-loop follow` adds them up to show images inferred while a batch
runs; the Map Run only says how many batches ended, and a run at one inference unit has one batch.

It is a display aid, not a record: the state payload never carries it (nothing here grows with the
images), nothing downstream reads it, and a write that fails is logged and forgotten, never a reason
to fail the batch. Format (docs/data-contracts.md): {"batchId", "count", "done", "inferred",
"skipped", "finished", "updatedAt"}.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.layout import RunLayout

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

EVERY_SECONDS = 3.0  # at most this stale while images finish
EVERY_IMAGES = 25  # or after this many more images, whichever comes first


class BatchProgress:
    """Writes a batch's progress object when enough has changed since the last write."""

    def __init__(
        self,
        s3: S3Client,
        layout: RunLayout,
        batch_id: int,
        count: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3 = s3
        self._uri = layout.batch_progress(batch_id)
        self._batch_id, self._count = batch_id, count
        self._clock = clock
        self._written_done: int | None = None
        self._written_at = clock()
        self.writes = 0

    def update(self, done: int, inferred: int, skipped: int, *, final: bool = False) -> None:
        """`done` images of the batch's `count` are finished (inferred or skipped)."""
        changed = self._written_done is None or done != self._written_done
        due = (
            self._written_done is None
            or done - self._written_done >= EVERY_IMAGES
            or self._clock() - self._written_at >= EVERY_SECONDS
        )
        if not changed or not (due or final):
            return
        document = {
            "batchId": self._batch_id,
            "count": self._count,
            "done": done,
            "inferred": inferred,
            "skipped": skipped,
            "finished": done >= self._count,
            "updatedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        try:
            write_json(self._s3, self._uri, document)
        except (ClientError, BotoCoreError) as error:
            logger.warning("batch progress not written (display only): %s", error)
            return
        self._written_done, self._written_at = done, self._clock()
        self.writes += 1
