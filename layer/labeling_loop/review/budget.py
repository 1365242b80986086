"""The review budget: which images people review first, and which wait for the next run.

`reviewBudget` is the most images a run sends to people, the audit sample included (it is always
reviewed and counted in the budget). Every image the plan sends to review gets a place in one order
(`review/order.jsonl`, rank 1 first); the first `reviewBudget` go to people, the rest are deferred
(`over-review-budget`, deferral.py): not skipped, their claims released for the next run, which by
then may have a better model. Without a budget every image is reviewed, in the same order, so the
images most likely wrong are the first people see.

The order:

1. **the audit sample** (review/selection.py: a random sample of the auto-accept candidates);
2. **the images an earlier run deferred**, the oldest deferral first, then the most likely wrong: the
   backlog is served before anything new, so it clears at the pace the report gives
   (`runsForBacklog`), whatever arrives meanwhile;
3. **each label's share** of the new images: `LABEL_SHARE` of what the budget leaves, split evenly
   among the labels the images show and the images that show no prediction (a group of their own),
   each group taking its most likely wrong images, group by group in turn: the images with no
   prediction first, then the labels with the fewest images. A rare label, and the images on which
   the model saw nothing, are reviewed even when other images look more likely to be wrong;
4. **every other image**, the most likely to need a correction first.

How likely an image needs a correction, from the model's own confidences c (0-1) on it: the
chance that a prediction people see is wrong (1 - c), or that one below `minConfidence`, which
they do not see, is an object they must add (c):

    score = 1 - (product over shown predictions of c) x (product over hidden ones of (1 - c))

With calibrated confidences (of the predictions reported at c, c are right) and errors independent
within the image, this is the probability that people change something. An image with more
predictions, or less confident ones, scores higher. An image with no prediction at all scores 0:
the model saw nothing, not even below `minConfidence` (inference keeps predictions down to 10); such
images are reviewed through their group's share, and wait otherwise. (Putting every image without a
prediction first was measured and rejected: most of them are empty scenes the model rightly left
empty, bench/README.md.) Ties are broken by a hash of the image salted with the run id: the same order
if a step is retried, and no bias towards the listing order.

The order is kept in a throwaway SQLite file (scratch_index.py), so memory does not grow with the
number of images; only the share's picks (at most a fifth of the budget) are held in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from labeling_loop.kernel.scratch_index import ScratchIndex

# The part of the budget (after the audit) kept for the label shares.
LABEL_SHARE = 0.2
NO_PREDICTION = ""  # the group of the images that show no prediction
Priority = Literal["audit", "label-share", "waited", "uncertainty"]


def correction_score(task: Mapping[str, Any], record: Mapping[str, Any], min_confidence: float) -> float:
    """How likely people change something on the image (module docstring). `task` is the image's
    review task (review/selection.py to_task: the predictions people see), `record` its prediction
    record (for the predictions below `min_confidence`, of the task's kind)."""
    keep = 1.0
    for prediction in task.get("predictions") or []:
        keep *= _probability(prediction.get("confidence"))
    detection = task.get("taskType") == "detection"
    for label in record.get("labels") or []:
        confidence = label.get("confidence")
        if not isinstance(confidence, int | float) or confidence >= min_confidence:
            continue
        if ("box" in label) == detection:
            keep *= 1.0 - _probability(confidence)
    return round(1.0 - keep, 6)


def _probability(confidence: Any) -> float:
    if not isinstance(confidence, int | float) or isinstance(confidence, bool):
        return 0.0
    return min(1.0, max(0.0, float(confidence) / 100.0))


def shown_labels(task: Mapping[str, Any]) -> tuple[str, ...]:
    """The labels people see on the image (its groups for the label shares); () when none."""
    return tuple(sorted({str(p["label"]) for p in task.get("predictions") or []}))


def tiebreak(source_ref: str, salt: str) -> float:
    """A uniform number in [0, 1) from the run id and the image: the order among equal scores."""
    digest = hashlib.sha256(f"order|{salt}|".encode() + source_ref.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def share_per_group(room: int, groups: int) -> int:
    """Images each group is guaranteed when `room` images are left after the audit: LABEL_SHARE of
    them split evenly, at least one each (as far as the room goes)."""
    if room <= 0 or groups <= 0:
        return 0
    return max(1, math.floor(room * LABEL_SHARE / groups))


@dataclass(frozen=True)
class Placed:
    """An image's place in the review order: one line of review/order.jsonl, and its task."""

    ref: str
    rank: int
    review: bool  # within the budget: people review it
    priority: Priority
    score: float
    labels: tuple[str, ...]
    share_label: str | None = None  # the group whose share took it (NO_PREDICTION: none shown)
    waited_since: int | None = None  # when an earlier run deferred it (epoch seconds)
    task: dict[str, Any] = field(default_factory=dict)  # the review task

    def line(self) -> dict[str, Any]:
        """The review/order.jsonl line (docs/data-contracts.md)."""
        line: dict[str, Any] = {
            "source-ref": self.ref,
            "rank": self.rank,
            "review": self.review,
            "priority": self.priority,
            "score": self.score,
            "labels": list(self.labels),
        }
        if self.priority == "label-share":
            line["shareOf"] = self.share_label or "(no prediction)"
        if self.waited_since is not None:
            line["deferredSince"] = self.waited_since
        return line


class ReviewQueue(ScratchIndex):
    """The images a review wave may send to people, ordered as the module docstring says."""

    def __init__(self, salt: str) -> None:
        super().__init__(prefix="review-order-")
        self.salt = salt
        self.images = 0
        self._db.execute(
            "CREATE TABLE queue (ref TEXT PRIMARY KEY, score REAL, tiebreak REAL, labels TEXT, task TEXT)"
            " WITHOUT ROWID"
        )
        self._db.execute("CREATE TABLE member (label TEXT, ref TEXT, PRIMARY KEY (label, ref)) WITHOUT ROWID")
        self._db.execute("CREATE TABLE waited (ref TEXT PRIMARY KEY, since INTEGER) WITHOUT ROWID")

    def load_waited(self, inventory: Iterable[Mapping[str, Any]]) -> None:
        """Which images an earlier run deferred, and since when (the inventory's `deferredSince`)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO waited VALUES (?, ?)",
            (
                (str(line["source-ref"]), int(line["deferredSince"]))
                for line in inventory
                if isinstance(line.get("deferredSince"), int | float) and "source-ref" in line
            ),
        )

    def add(self, task: Mapping[str, Any], score: float) -> None:
        """An image that needs review, with its task and score (a second add of it is ignored)."""
        ref = str(task["source-ref"])
        labels = shown_labels(task)
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO queue VALUES (?, ?, ?, ?, ?)",
            (ref, score, tiebreak(ref, self.salt), json.dumps(labels), json.dumps(task)),
        )
        if cursor.rowcount != 1:
            return
        self.images += 1
        self._db.executemany(
            "INSERT OR IGNORE INTO member VALUES (?, ?)",
            ((label, ref) for label in labels or (NO_PREDICTION,)),
        )

    def _ordered(self, where: str = "", args: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        query = (
            "SELECT q.ref, q.score, q.labels, q.task, w.since"
            " FROM queue q LEFT JOIN waited w ON w.ref = q.ref"
            # The oldest deferral first (new images have none); then the most likely wrong; then the hash.
            f" {where} ORDER BY COALESCE(w.since, 0), q.score DESC, q.tiebreak"
        )
        yield from self._db.execute(query, args)

    def _group_order(self) -> list[str]:
        """The groups of the shares (new images only), in turn order: no prediction first, then the
        rarest labels."""
        rows = self._db.execute(
            "SELECT m.label, COUNT(*) FROM member m LEFT JOIN waited w ON w.ref = m.ref"
            " WHERE w.since IS NULL GROUP BY m.label"
        ).fetchall()
        return [label for label, _ in sorted(rows, key=lambda r: (r[0] != NO_PREDICTION, r[1], r[0]))]

    def order(self, room: int | None, first_rank: int = 1) -> Iterator[Placed]:
        """Every queued image in its place, from `first_rank`; the first `room` (None: all) are
        reviewed, the rest not."""
        rank = first_rank

        def within() -> bool:
            return room is None or rank - first_rank < room

        for row in self._ordered("WHERE w.since IS NOT NULL"):
            yield self._placed(row, rank, within(), "waited")
            rank += 1
        taken: set[str] = set()
        if room is not None and within():
            groups = self._group_order()
            left = min(room - (rank - first_rank), self.images - (rank - first_rank))
            quota = share_per_group(left, len(groups))
            cursors = {
                g: self._ordered("JOIN member m ON m.ref = q.ref WHERE w.since IS NULL AND m.label = ?", (g,))
                for g in groups
            }
            for _ in range(quota):
                for group in groups:
                    pick = _next_untaken(cursors[group], taken) if within() else None
                    if pick is None:
                        continue
                    taken.add(pick[0])
                    yield self._placed(pick, rank, True, "label-share", group)
                    rank += 1
        for row in self._ordered("WHERE w.since IS NULL"):
            if row[0] in taken:
                continue
            yield self._placed(row, rank, within(), "uncertainty")
            rank += 1

    @staticmethod
    def _placed(
        row: tuple[Any, ...], rank: int, review: bool, priority: Priority, group: str | None = None
    ) -> Placed:
        ref, score, labels, task, since = row[:5]
        return Placed(
            ref=ref,
            rank=rank,
            review=review,
            priority=priority,
            score=float(score),
            labels=tuple(json.loads(labels)),
            share_label=group,
            waited_since=int(since) if since is not None else None,
            task=json.loads(task),
        )


def _next_untaken(rows: Iterator[tuple[Any, ...]], taken: set[str]) -> tuple[Any, ...] | None:
    """The next row of a group whose image no other group's share took."""
    for row in rows:
        if row[0] not in taken:
            return row
    return None


def audit_line(
    task: Mapping[str, Any], record: Mapping[str, Any], rank: int, min_confidence: float
) -> Placed:
    """The order's line of an audited image: always reviewed, before everything else."""
    return Placed(
        ref=str(task["source-ref"]),
        rank=rank,
        review=True,
        priority="audit",
        score=correction_score(task, record, min_confidence),
        labels=shown_labels(task),
        task=dict(task),
    )
