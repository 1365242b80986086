"""The run's invariant: every listed image is in the manifest, skipped or deferred
(imagesListed == imagesInManifest + imagesSkipped + imagesDeferred), or warnings naming the images
that differ."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from labeling_loop.finishing.manifest.spill_index import SpillIndex
from labeling_loop.kernel.jsonl import read_jsonl
from labeling_loop.kernel.layout import RunLayout

MAX_LISTED_REFS = 20  # images named in one warning


def _refs_text(count: int, sample: list[str]) -> str:
    more = f" and {count - len(sample)} more" if count > len(sample) else ""
    return ", ".join(sample) + more


def check_invariant(s3: Any, layout: RunLayout, index: SpillIndex, counts: Mapping[str, int]) -> list[str]:
    """No warning when the counts add up; else the sums, and the images listed but nowhere and
    those somewhere but not listed."""
    listed, in_manifest = counts["imagesListed"], counts["imagesInManifest"]
    skipped, deferred = counts["imagesSkipped"], counts["imagesDeferred"]
    if listed == in_manifest + skipped + deferred:
        return []
    warnings = [
        f"imagesListed ({listed}) != imagesInManifest ({in_manifest}) + imagesSkipped ({skipped})"
        f" + imagesDeferred ({deferred})"
    ]
    try:
        index.load_listed(
            (r["source-ref"],)
            for r in itertools.chain(
                read_jsonl(s3, layout.inventory),
                # Listed but never inventoried: refused or deferred at listing.
                read_jsonl(s3, layout.skipped_part("listing", 0), missing_ok=True),
                read_jsonl(s3, layout.deferred_part("listing", 0), missing_ok=True),
            )
            if isinstance(r.get("source-ref"), str)
        )
    except s3.exceptions.NoSuchKey:
        return [*warnings, f"cannot name the images: {layout.inventory} is missing"]
    count, sample = index.unaccounted(MAX_LISTED_REFS)
    if count:
        warnings.append(
            f"{count} listed images neither in the manifest, skipped nor deferred: "
            + _refs_text(count, sample)
        )
    count, sample = index.unlisted(MAX_LISTED_REFS)
    if count:
        warnings.append(
            f"{count} images in the manifest, skipped or deferred but not listed: {_refs_text(count, sample)}"
        )
    return warnings
