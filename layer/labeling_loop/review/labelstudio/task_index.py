"""The run's review tasks by source-ref, on disk, for collecting a Label Studio review: SQLite in the
standard library under /tmp (roughly the size of review/tasks.jsonl), so collect holds one export
chunk at a time, not every task of a 100,000-task review (~2 KB of Python objects each)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from labeling_loop.kernel.scratch_index import ScratchIndex


class TaskIndex(ScratchIndex):
    def __init__(self, tasks: Iterable[dict[str, Any]]) -> None:
        super().__init__(prefix="collect-review-")
        self._db.execute("CREATE TABLE tasks (ref TEXT PRIMARY KEY, data BLOB, seen INTEGER) WITHOUT ROWID")
        self._db.executemany(
            "INSERT OR REPLACE INTO tasks VALUES (?, ?, 0)",
            ((str(task["source-ref"]), json.dumps(task).encode("utf-8")) for task in tasks),
        )

    def take(self, ref: str) -> dict[str, Any] | None:
        """The run's task of this image, the first time it is asked for; None for an image the run
        did not review, or one already taken (a duplicate)."""
        row = self._db.execute("SELECT data FROM tasks WHERE ref = ? AND seen = 0", (ref,)).fetchone()
        if row is None:
            return None
        self._db.execute("UPDATE tasks SET seen = 1 WHERE ref = ?", (ref,))
        task: dict[str, Any] = json.loads(row[0])
        return task

    def untaken(self) -> Iterator[str]:
        """The images whose task was never taken, in order."""
        for (ref,) in self._db.execute("SELECT ref FROM tasks WHERE seen = 0 ORDER BY ref"):
            yield ref
