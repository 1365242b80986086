"""The run's review tasks by source-ref, on disk, for collecting a Label Studio review: SQLite in the
standard library under /tmp (roughly the size of review/tasks.jsonl), so collect holds one export
chunk at a time, not every task of a 100,000-task review (~2 KB of Python objects each)."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any


class TaskIndex:
    def __init__(self, tasks: Iterable[dict[str, Any]]) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="collect-review-")
        self._db = sqlite3.connect(str(Path(self._dir.name) / "tasks.sqlite3"))
        # A throwaway index: no journal, no fsync; a crash just reruns the step.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE tasks (ref TEXT PRIMARY KEY, data BLOB, seen INTEGER) WITHOUT ROWID")
        self._db.executemany(
            "INSERT OR REPLACE INTO tasks VALUES (?, ?, 0)",
            ((str(task["source-ref"]), json.dumps(task).encode("utf-8")) for task in tasks),
        )

    def __enter__(self) -> TaskIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._db.close()
        self._dir.cleanup()

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
