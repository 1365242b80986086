"""The one place that maps a run's `reviewBackend` to its implementation."""

from __future__ import annotations

from typing import get_args

from labeling_loop.review.backend import ReviewBackend, ReviewBackendName
from labeling_loop.review.groundtruth.backend import GroundTruthBackend
from labeling_loop.review.labelstudio.backend import LabelStudioBackend

BACKENDS: dict[str, ReviewBackend] = {b.name: b for b in (GroundTruthBackend(), LabelStudioBackend())}
assert set(BACKENDS) == set(get_args(ReviewBackendName)), "every backend name has one implementation"


def backend_for(name: str) -> ReviewBackend:
    """The backend named `name`; KeyError names the unknown backend."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown review backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None


def find_backend(name: str | None) -> ReviewBackend | None:
    """The backend named `name`, or None for a name no backend has (a record from an older run)."""
    return BACKENDS.get(name or "")
