"""What both backends' collect steps need to distrust a reviewer's answer: an answer is data people
(or scripts) can edit outside the labeling UI, so it is checked before it becomes a manifest line.
An answer that cannot be read makes that image an `invalid-annotation` skip, never fails the run."""

from __future__ import annotations

import math
from typing import Any


class InvalidAnswer(ValueError):
    """An answer this run cannot read; the message says what is wrong with it."""


def finite(value: Any, what: str) -> float:
    """A coordinate: a JSON number that is finite. "nan", 1e400 (inf), null, a string or a boolean
    would become a box nobody drew."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidAnswer(f"{what} is {value!r}, not a finite number")
    return float(value)


def names(value: Any, what: str) -> list[str]:
    """A list of label names (a string, a dict or a list of other things is not)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidAnswer(f"{what} is {value!r}, not a list of label names")
    return list(value)
