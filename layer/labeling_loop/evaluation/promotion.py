"""Is the new model version really better? Both versions compared on one frozen test set, image by
image, and promoted only when the 95 % interval of the F1 difference lies above 0.

What Custom Labels keeps (docs/aws-facts.md §1.9): DescribeProjectVersions points each trained
version at its *testing snapshot* (`TestingDataResult.Output`: the test images actually tested, as
Ground Truth manifest lines whose predictions carry `rekognition-custom-labels-evaluation-details`
with `is-true-positive`, `is-false-positive`, ...) and its *training snapshot*
(`TrainingDataResult.Output`: the images actually used for training). From the testing snapshots:

- per test image, each version's true positives, false positives and false negatives at its own
  threshold. A missed object has no prediction entry, so false negatives are the image's
  ground-truth objects minus its true positives (derived);
- the comparison is paired: the same images, joined on `source-ref`. It is refused, saying why,
  when the two versions were not tested on the same images, when a test image's ground truth
  changed between the two tests, or when test images are in the new version's training data;
- F1 is micro F1 over the test set, 2 TP / (2 TP + FP + FN): a ratio of two sums over images.

The interval: the difference of two such ratios over the same images is a smooth function of
per-image means, so its variance is that of the per-image linearized values (the delta method,
Taylor linearization of a ratio estimator: Cochran, *Sampling Techniques*, 3rd ed., §6.4; the
nonparametric bootstrap over images estimates the same variance to first order: Efron and
Tibshirani, *An Introduction to the Bootstrap*, §21.3). For version v and image i, with
a_i = 2 TP_i, b_i = 2 TP_i + FP_i + FN_i and R = sum a / sum b:

    e_i = (a_i - R b_i) / mean(b),   z_i = e_i(new) - e_i(current),
    difference = R(new) - R(current) +- t(0.975, n - 1) * sqrt(sum z_i² / (n (n - 1)))

Student's t with n - 1 degrees of freedom rather than the normal quantile keeps small test sets
honest. It needs no resampling, so the decision costs one pass over the snapshots whatever their
size, and tests can simulate a thousand decisions in seconds (tests/unit/evaluation/test_promotion.py measures
how often equal versions are promoted and how often a better one is, and compares the interval
with a seeded paired bootstrap).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labeling_loop.kernel.aws_clients import error_code
from labeling_loop.kernel.jsonl import read_jsonl
from labeling_loop.kernel.s3_uri import S3Uri

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

DETAILS = "rekognition-custom-labels-evaluation-details"
DETECTION = "groundtruth/object-detection"
CLASSIFICATION = "groundtruth/image-classification"
CONFIDENCE = 0.95
METHOD = "paired over the test images; 95 % interval by linearization (delta method), Student t, n-1 df"

NO_TEST_DATASET = (
    "the project has no TEST dataset: Custom Labels then tests each version on a temporary split of "
    "its own training data (docs/aws-facts.md §1.9), so no two versions are tested on the same "
    "images and no comparison is possible. To get one, give the project a TEST dataset of labeled "
    "images that are not in its TRAIN dataset: in the console (the project's Dataset page, 'Create "
    "test dataset'), or with CreateDataset (DatasetType TEST, a Ground Truth manifest), or move 20 % "
    "of the training images into an empty TEST dataset with DistributeDatasetEntries. The first "
    "version trained after that is tested on it; from the next training on, versions are compared."
)


@dataclass(frozen=True)
class ImageCounts:
    """One test image as one version's testing snapshot scores it."""

    tp: int
    fp: int
    fn: int
    truth: str  # a fingerprint of the image's ground truth (the same test image, labelled the same)


class ComparisonRefused(Exception):
    """The two versions cannot be compared fairly; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# reading the snapshots


def image_counts(line: Mapping[str, Any]) -> ImageCounts:
    """TP, FP and FN of one testing-snapshot line (docs/aws-facts.md §1.9)."""
    details: list[Mapping[str, Any]] = []
    truths: list[tuple[Mapping[str, Any], Any]] = []  # (metadata, value) of ground-truth attributes
    for attr, value in line.items():
        if attr == "source-ref" or attr.endswith("-metadata"):
            continue
        metadata = line.get(f"{attr}-metadata")
        if not isinstance(metadata, Mapping):
            continue
        found = _details(metadata)
        if found:
            details.extend(found)
        elif metadata.get("type") in (DETECTION, CLASSIFICATION):
            truths.append((metadata, value))
    jobs = {job for d in details for job in d.get("ground-truth-labelling-jobs") or []}
    named = [(m, v) for m, v in truths if m.get("job-name") in jobs]
    truths = named or truths  # a snapshot line naming no job: every ground-truth attribute counts
    objects = sorted(_truth_objects(truths))
    tp = sum(1 for d in details if d.get("is-true-positive") is True)
    fp = sum(1 for d in details if d.get("is-false-positive") is True)
    fingerprint = hashlib.sha256(repr(objects).encode()).hexdigest()[:16]
    return ImageCounts(tp, fp, max(0, len(objects) - tp), fingerprint)


def _details(metadata: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The evaluation details of a prediction attribute: one per predicted object (detection, in
    `objects`) or one for the attribute (an image-level label)."""
    if isinstance(metadata.get(DETAILS), Mapping):
        return [metadata[DETAILS]]
    objects = metadata.get("objects")
    if isinstance(objects, list):
        return [o[DETAILS] for o in objects if isinstance(o, Mapping) and isinstance(o.get(DETAILS), Mapping)]
    return []


def _truth_objects(truths: Iterable[tuple[Mapping[str, Any], Any]]) -> Iterable[tuple[Any, ...]]:
    for metadata, value in truths:
        if metadata.get("type") == DETECTION and isinstance(value, Mapping):
            names = {str(k): v for k, v in (metadata.get("class-map") or {}).items()}
            for box in value.get("annotations") or []:
                yield (
                    str(names.get(str(box.get("class_id")), box.get("class_id"))),
                    *(round(float(box.get(k, 0)), 1) for k in ("left", "top", "width", "height")),
                )
        elif metadata.get("type") == CLASSIFICATION and isinstance(metadata.get("class-name"), str):
            yield (metadata["class-name"],)


def read_testing_snapshot(lines: Iterable[Mapping[str, Any]]) -> dict[str, ImageCounts]:
    """{source-ref: counts} of a whole testing snapshot. A source-ref twice is refused: one image
    tested twice would weigh double."""
    images: dict[str, ImageCounts] = {}
    for line in lines:
        ref = line.get("source-ref")
        if not isinstance(ref, str):
            continue
        if ref in images:
            raise ComparisonRefused(f"the testing snapshot lists {ref} twice")
        images[ref] = image_counts(line)
    return images


def snapshot_uris(description: Mapping[str, Any], result: str) -> list[S3Uri]:
    """Where a version's `TestingDataResult` or `TrainingDataResult` snapshot is (its `Output`)."""
    output = ((description.get(result) or {}).get("Output") or {}).get("Assets") or []
    uris = []
    for asset in output:
        s3_object = ((asset or {}).get("GroundTruthManifest") or {}).get("S3Object") or {}
        if s3_object.get("Bucket") and s3_object.get("Name"):
            uris.append(S3Uri(s3_object["Bucket"], s3_object["Name"]))
    return uris


# ---------------------------------------------------------------------------------------------
# the statistics


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (p > 0.5): for df <= 100 the root, by bisection, of the exact CDF for
    integer degrees of freedom (Abramowitz and Stegun 26.7.3-26.7.4, finite sums); above, the
    Cornish-Fisher expansion about the normal quantile (26.7.5), within 1e-5 there."""
    if df < 1:
        raise ValueError("t_quantile needs at least one degree of freedom")
    if df > 100:
        z = NormalDist().inv_cdf(p)
        g1 = (z**3 + z) / 4
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
        g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
        return z + g1 / df + g2 / df**2 + g3 / df**3
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if _t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def _t_cdf(t: float, df: int) -> float:
    """P(T <= t) for t >= 0 and integer df: (1 + A(t|df)) / 2 with A&S 26.7.3 (odd) or 26.7.4 (even)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2:
        term, total = math.cos(theta), 0.0
        if df > 1:
            total = term
            for k in range(3, df - 1, 2):  # the cos^3 .. cos^(df-2) terms
                term *= cos2 * (k - 1) / k
                total += term
        a = 2 / math.pi * (theta + math.sin(theta) * total)
    else:
        term = total = 1.0
        for k in range(2, df - 1, 2):  # the cos^2 .. cos^(df-2) terms
            term *= cos2 * (k - 1) / k
            total += term
        a = math.sin(theta) * total
    return (1 + a) / 2


def _linearized(counts: list[ImageCounts]) -> tuple[float, list[float]]:
    """Micro F1 of the images and each image's linearized value e_i (module docstring)."""
    a = [2.0 * c.tp for c in counts]
    b = [2.0 * c.tp + c.fp + c.fn for c in counts]
    total = sum(b)
    if total == 0:
        raise ComparisonRefused("no test image has an object or a prediction: F1 is undefined")
    f1 = sum(a) / total
    mean_b = total / len(counts)
    return f1, [(ai - f1 * bi) / mean_b for ai, bi in zip(a, b, strict=True)]


def _interval(estimate: float, values: list[float], t: float, clamp: tuple[float, float]) -> list[float]:
    n = len(values)
    half = t * math.sqrt(sum(v * v for v in values) / (n * (n - 1)))
    return [round(max(clamp[0], estimate - half), 4), round(min(clamp[1], estimate + half), 4)]


@dataclass(frozen=True)
class PairedF1:
    images: int
    before: float
    before_interval: list[float]
    after: float
    after_interval: list[float]
    difference: float
    difference_interval: list[float]

    @property
    def better(self) -> bool:
        """The decision rule: the whole interval of the difference is above 0."""
        return self.difference_interval[0] > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "testImages": self.images,
            "f1Before": {"estimate": round(self.before, 4), "interval95": self.before_interval},
            "f1After": {"estimate": round(self.after, 4), "interval95": self.after_interval},
            "difference": {"estimate": round(self.difference, 4), "interval95": self.difference_interval},
        }


def paired_f1(before: Mapping[str, ImageCounts], after: Mapping[str, ImageCounts]) -> PairedF1:
    """The F1 of each version and their difference (after - before), with 95 % intervals, on the
    same test images. Refuses (ComparisonRefused) different images or changed ground truth."""
    only_before = sorted(set(before) - set(after))
    only_after = sorted(set(after) - set(before))
    if only_before or only_after:
        example = (only_before or only_after)[0]
        raise ComparisonRefused(
            f"the two versions were not tested on the same images: {len(only_before)} only in the "
            f"current version's test, {len(only_after)} only in the new one's (e.g. {example}); the "
            "project's TEST dataset changed between the two trainings, or one of them had none"
        )
    refs = sorted(before)
    changed = [ref for ref in refs if before[ref].truth != after[ref].truth]
    if changed:
        raise ComparisonRefused(
            f"the ground truth of {len(changed)} test images changed between the two tests "
            f"(e.g. {changed[0]}): the versions were scored against different labels"
        )
    if len(refs) < 2:
        raise ComparisonRefused(f"{len(refs)} test image: an interval needs at least 2")
    f1_before, e_before = _linearized([before[r] for r in refs])
    f1_after, e_after = _linearized([after[r] for r in refs])
    t = t_quantile(0.5 + CONFIDENCE / 2, len(refs) - 1)
    z = [ea - eb for ea, eb in zip(e_after, e_before, strict=True)]
    difference = f1_after - f1_before
    return PairedF1(
        images=len(refs),
        before=f1_before,
        before_interval=_interval(f1_before, e_before, t, (0.0, 1.0)),
        after=f1_after,
        after_interval=_interval(f1_after, e_after, t, (0.0, 1.0)),
        difference=difference,
        difference_interval=_interval(difference, z, t, (-1.0, 1.0)),
    )


# ---------------------------------------------------------------------------------------------
# the comparison a training run makes


def compare_versions(
    s3: S3Client,
    current_testing: list[S3Uri],
    new_version: Mapping[str, Any],
    *,
    has_test_dataset: bool,
) -> dict[str, Any]:
    """report.json's `training.comparison`: the paired F1 comparison of the current version (its
    testing snapshot URIs, read when the run started) and the new version's description, or why
    there is none (`possible` false and `reason`). Never raises for a refusal."""
    base: dict[str, Any] = {"possible": False, "method": METHOD, "better": False}
    if not has_test_dataset:
        return {**base, "reason": NO_TEST_DATASET}
    new_testing = snapshot_uris(new_version, "TestingDataResult")
    new_training = snapshot_uris(new_version, "TrainingDataResult")
    if not current_testing:
        return {
            **base,
            "reason": "the current version has no testing results (TestingDataResult) to compare with",
        }
    if not new_testing or not new_training:
        return {
            **base,
            "reason": "the new version's description has no TestingDataResult or TrainingDataResult output",
        }
    try:
        before = _read_snapshots(s3, current_testing)
        after = _read_snapshots(s3, new_testing)
        leaked = _test_images_in(s3, new_training, set(after))
        if leaked:
            raise ComparisonRefused(
                f"{len(leaked)} test images are in the new version's training data (e.g. {leaked[0]}): "
                "its test would flatter it; take them out of the TRAIN dataset (or the TEST dataset) "
                "and train again"
            )
        paired = paired_f1(before, after)
    except ComparisonRefused as refused:
        return {**base, "reason": str(refused)}
    return {
        **base,
        "possible": True,
        **paired.as_dict(),
        "better": paired.better,
        "reason": _verdict(paired),
        "testResults": {"current": [str(u) for u in current_testing], "new": [str(u) for u in new_testing]},
    }


def _verdict(paired: PairedF1) -> str:
    low, high = paired.difference_interval
    figures = f"F1 difference {paired.difference:+.4f}, 95 % interval [{low:+.4f}, {high:+.4f}]"
    if paired.better:
        return f"{figures} above 0 on {paired.images} test images"
    if high < 0:
        return f"the new version is worse: {figures} below 0"
    return (
        f"no proven improvement: {figures} includes 0 on {paired.images} test images "
        "(a larger TEST dataset narrows it)"
    )


def _read_snapshots(s3: S3Client, uris: list[S3Uri]) -> dict[str, ImageCounts]:
    images: dict[str, ImageCounts] = {}
    for uri in uris:
        for ref, counts in read_testing_snapshot(_lines(s3, uri)).items():
            if ref in images:
                raise ComparisonRefused(f"the testing snapshots list {ref} twice")
            images[ref] = counts
    return images


def _test_images_in(s3: S3Client, uris: list[S3Uri], test_refs: set[str]) -> list[str]:
    return sorted(
        {ref for uri in uris for line in _lines(s3, uri) if (ref := line.get("source-ref")) in test_refs}
    )


def _lines(s3: S3Client, uri: S3Uri) -> Iterable[dict[str, Any]]:
    try:
        yield from read_jsonl(s3, uri)
    except ClientError as error:
        raise ComparisonRefused(
            f"cannot read {uri}: {error_code(error)} (the TrainModel function's role reads the "
            "versions' training output; a version trained outside this stack may keep it in a bucket "
            "the role cannot read)"
        ) from None
    except ValueError as error:
        raise ComparisonRefused(f"{uri} is not JSON Lines: {error}") from None


def decide(
    comparison: Mapping[str, Any], promote_if_better: bool, current_arn: str, new_arn: str
) -> dict[str, Any]:
    """The promotion decision: only with promoteIfBetter and a proven improvement."""
    promote = promote_if_better and bool(comparison.get("better"))
    if not promote_if_better:
        reason = "promoteIfBetter is off"
    elif comparison.get("possible"):
        reason = str(comparison.get("reason"))
    else:
        reason = f"not compared: {comparison.get('reason')}"
    return {
        "promote": promote,
        "reason": reason,
        "nextProjectVersionArn": new_arn if promote else current_arn,
    }
