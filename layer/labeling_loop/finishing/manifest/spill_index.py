"""A disk-backed index by source-ref for building a run's manifest: where each image went (manifest
or skipped), the model's prediction for each image, and the listed images. SQLite in the standard
library, in a temporary folder under /tmp (512 MB by default on Lambda; roughly 100 bytes per image),
so neither the predictions nor the set of images seen are held in memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from labeling_loop.kernel.scratch_index import ScratchIndex

IN_MANIFEST = 1
SKIPPED = 2
DEFERRED = 3


class SpillIndex(ScratchIndex):
    """Disk-backed lookups by source-ref, so neither the predictions nor the set of images seen
    are held in memory."""

    def __init__(self) -> None:
        super().__init__(prefix="build-manifest-")
        self._db.execute("CREATE TABLE seen (ref TEXT PRIMARY KEY, kind INTEGER) WITHOUT ROWID")
        self._db.execute("CREATE TABLE predictions (ref TEXT PRIMARY KEY, data BLOB) WITHOUT ROWID")
        self._db.execute("CREATE TABLE listed (ref TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("CREATE TABLE audited (ref TEXT PRIMARY KEY) WITHOUT ROWID")
        self.predictions_loaded = False

    def claim(self, ref: str, kind: int) -> bool:
        """Record where an image went; False if it was already somewhere (first one wins)."""
        cursor = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (ref, kind))
        return cursor.rowcount == 1

    def kind(self, ref: str) -> int | None:
        row = self._db.execute("SELECT kind FROM seen WHERE ref = ?", (ref,)).fetchone()
        return row[0] if row else None

    def load_predictions(self, rows: Iterator[tuple[str, bytes]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?)", rows)
        self.predictions_loaded = True

    def prediction(self, ref: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT data FROM predictions WHERE ref = ?", (ref,)).fetchone()
        return json.loads(row[0]) if row else None

    def load_audited(self, refs: Iterator[tuple[str]]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO audited VALUES (?)", refs)

    def is_audited(self, ref: str) -> bool:
        return self._db.execute("SELECT 1 FROM audited WHERE ref = ?", (ref,)).fetchone() is not None

    def load_listed(self, refs: Iterator[tuple[str]]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO listed VALUES (?)", refs)

    def unaccounted(self, limit: int) -> tuple[int, list[str]]:
        """Listed images neither in the manifest, nor skipped, nor deferred."""
        query = "FROM listed WHERE NOT EXISTS (SELECT 1 FROM seen WHERE seen.ref = listed.ref)"
        return self._count_and_sample(query, limit)

    def unlisted(self, limit: int) -> tuple[int, list[str]]:
        """Images in the manifest, skipped or deferred that the listing does not name."""
        query = "FROM seen WHERE NOT EXISTS (SELECT 1 FROM listed WHERE listed.ref = seen.ref)"
        return self._count_and_sample(query, limit)

    def _count_and_sample(self, query: str, limit: int) -> tuple[int, list[str]]:
        count = self._db.execute(f"SELECT COUNT(*) {query}").fetchone()[0]
        sample = [r[0] for r in self._db.execute(f"SELECT ref {query} ORDER BY ref LIMIT ?", (limit,))]
        return count, sample
