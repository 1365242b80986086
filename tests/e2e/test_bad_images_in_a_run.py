"""The bad-image corpus through a whole run: every awkward file is labeled with its displayed size or
skipped with the reason the corpus expects, and keys with spaces, '+', '%' or non-ASCII round-trip."""

from __future__ import annotations

from collections import Counter

import pytest

from localcloud.data.bad_images import BadImageCase, generate_bad_corpus
from localcloud.data.dataset import MANIFEST_NAME
from localcloud.runner import IMAGES_PREFIX, LocalRunResult, run_local

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[BadImageCase], LocalRunResult]:
    folder = tmp_path_factory.mktemp("bad-images")
    cases = generate_bad_corpus(folder)
    result = run_local(folder, folder / MANIFEST_NAME, name="bad-images", timeout=180)
    return cases, result


def _ref(result: LocalRunResult, case: BadImageCase) -> str:
    # source-ref keeps the key exactly as S3 stores it: never URL-encoded, never decoded
    return f"s3://{result.stack.images_bucket}/{IMAGES_PREFIX}{case.path}"


def test_the_run_succeeds_with_every_case_accounted_for(
    corpus_run: tuple[list[BadImageCase], LocalRunResult],
) -> None:
    cases, result = corpus_run
    assert result.summary["status"] == "SUCCEEDED", result.summary
    expected = {_ref(result, case) for case in cases}
    # inventory.jsonl holds the images sent to inference; those rejected at listing (the GIF) are
    # only in skipped.jsonl, with stage "listing", and counted in imagesListed
    at_listing = [r["source-ref"] for r in result.skipped if r["stage"] == "listing"]
    listed = [r["source-ref"] for r in result.inventory] + at_listing
    in_manifest = [line["source-ref"] for line in result.manifest]
    skipped = [r["source-ref"] for r in result.skipped]
    assert set(listed) == expected and len(listed) == len(cases), sorted(set(listed) ^ expected)
    assert not [ref for ref, n in Counter(in_manifest + skipped).items() if n > 1], "an image ended twice"
    assert set(in_manifest) | set(skipped) == expected
    counts = result.report["counts"]
    assert counts["imagesListed"] == counts["imagesInManifest"] + counts["imagesSkipped"] == len(cases)
    assert result.summary["model_status_at_end"] == "STOPPED"
    assert len(result.summary["labeling_jobs"]) == len(set(result.summary["labeling_jobs"]))


def test_each_case_ends_as_the_corpus_expects(corpus_run: tuple[list[BadImageCase], LocalRunResult]) -> None:
    cases, result = corpus_run
    manifest = {line["source-ref"]: line for line in result.manifest}
    skipped = {record["source-ref"]: record for record in result.skipped}
    wrong = []
    for case in cases:
        ref = _ref(result, case)
        if case.expect == "labeled":
            line = manifest.get(ref)
            if line is None:
                wrong.append(f"{case.path}: expected in the manifest, got {skipped.get(ref)}")
                continue
            size = line["bounding-box"]["image_size"][0]
            if (size["width"], size["height"]) != case.display_size:
                wrong.append(f"{case.path}: image_size {size}, displayed {case.display_size} ({case.note})")
        else:
            record = skipped.get(ref)
            if record is None or record["reason"] != case.reason:
                got = record["reason"] if record else ("in the manifest" if ref in manifest else "missing")
                wrong.append(f"{case.path}: expected skipped as {case.reason}, got {got} ({case.note})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "path",
    [
        "names/with space.jpg",
        "names/a+b.jpg",
        "names/100%.jpg",
        "names/a%20b.jpg",
        "names/café-猫.jpg",
        "names/dir with space/ünï.png",
    ],
)
def test_awkward_keys_round_trip_exactly(
    corpus_run: tuple[list[BadImageCase], LocalRunResult], path: str
) -> None:
    _, result = corpus_run
    ref = f"s3://{result.stack.images_bucket}/{IMAGES_PREFIX}{path}"
    # the listing, the manifest and the review saw the very same key
    assert ref in {r["source-ref"] for r in result.inventory}
    assert ref in {line["source-ref"] for line in result.manifest}
    assert ref in {r["source-ref"] for r in result.extra["reviewed"]}
    assert sum(1 for r in result.inventory if r["key"] == IMAGES_PREFIX + path) == 1
