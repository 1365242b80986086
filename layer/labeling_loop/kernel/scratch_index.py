"""A throwaway SQLite database in a temporary folder under /tmp (512 MB by default on Lambda), for
steps that look things up by source-ref in runs too large to hold in memory. SQLite is in the
standard library; the database lives as long as the step."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self


class ScratchIndex:
    """Base of the steps' disk-backed indexes: opens the database, and removes it on exit."""

    def __init__(self, prefix: str) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)
        self._db = sqlite3.connect(str(Path(self._dir.name) / "index.sqlite3"))
        # No journal, no fsync: a crash just reruns the step.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._db.close()
        self._dir.cleanup()
