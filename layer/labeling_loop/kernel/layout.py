"""Where a run's files live in S3 (see docs/data-contracts.md). One prefix per execution, so a user
can open it in the S3 console and follow what happened.

A run reviews in one wave, or two when the audit gate sends the auto-accepted images to people
(evaluation/audit.py): the second wave's review files live in `review/wave-2/`, the same names as
the first's in `review/` (`for_wave`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from labeling_loop.kernel.s3_uri import S3Uri


@dataclass(frozen=True)
class RunLayout:
    root: S3Uri  # s3://<outputBucket>/<outputPrefix>/<runId>/
    review_dir: str = "review/"  # the review wave's files (for_wave)

    @classmethod
    def for_run(cls, output: S3Uri, run_id: str) -> RunLayout:
        return cls(output.as_prefix().join(run_id).as_prefix())

    def for_wave(self, wave: int) -> RunLayout:
        """The layout whose review files are those of review wave `wave` (1 or 2)."""
        if wave not in (1, 2):
            raise ValueError(f"review wave {wave}: a run reviews in one or two waves")
        return replace(self, review_dir="review/" if wave == 1 else "review/wave-2/")

    @property
    def wave(self) -> int:
        return 1 if self.review_dir == "review/" else 2

    def _at(self, name: str) -> S3Uri:
        return self.root.join(name)

    def _review(self, name: str) -> S3Uri:
        return self.root.join(self.review_dir + name)

    @property
    def config(self) -> S3Uri:
        return self._at("config.json")

    @property
    def inventory(self) -> S3Uri:
        return self._at("inventory.jsonl")

    @property
    def predictions_prefix(self) -> S3Uri:
        return self._at("predictions/")

    def predictions_part(self, part: int | str) -> S3Uri:
        return self._at(f"predictions/batch-{_part_name(part)}.jsonl")

    @property
    def batch_progress_prefix(self) -> S3Uri:
        return self._at("progress/")

    def batch_progress(self, batch_id: int) -> S3Uri:
        return self._at(f"progress/batch-{batch_id:05d}.json")

    @property
    def skipped_prefix(self) -> S3Uri:
        return self._at("skipped/")

    def skipped_part(self, stage: str, part: int | str) -> S3Uri:
        return self._stage_part("skipped", stage, part)

    @property
    def deferred_prefix(self) -> S3Uri:
        return self._at("deferred/")

    def deferred_part(self, stage: str, part: int | str) -> S3Uri:
        return self._stage_part("deferred", stage, part)

    def _stage_part(self, folder: str, stage: str, part: int | str) -> S3Uri:
        """`<folder>/<stage>-<part>.jsonl`: one stage's part of the skip or deferral records."""
        suffix = _part_name(part)
        if stage == "review" and self.wave > 1:  # each review wave keeps its own records
            suffix += f"-wave-{self.wave}"
        return self._at(f"{folder}/{stage}-{suffix}.jsonl")

    @property
    def deferred(self) -> S3Uri:
        return self._at("deferred.jsonl")

    @property
    def review_tasks(self) -> S3Uri:
        return self._review("tasks.jsonl")

    @property
    def review_order(self) -> S3Uri:
        """Every image the wave could send to people, in the review order (review/budget.py)."""
        return self._review("order.jsonl")

    @property
    def auto_accepted(self) -> S3Uri:
        return self._at("review/auto_accepted.jsonl")

    @property
    def audit(self) -> S3Uri:
        return self._at("review/audit.jsonl")

    @property
    def gate(self) -> S3Uri:
        """The audit gate's decision (after the first wave)."""
        return self._at("review/gate.json")

    @property
    def review_jobs(self) -> S3Uri:
        return self._review("jobs.json")

    @property
    def review_plan(self) -> S3Uri:
        return self._review("plan.json")

    def groundtruth_job_prefix(self, job_name: str) -> S3Uri:
        return self._review(f"groundtruth/{job_name}/")

    @property
    def groundtruth_output(self) -> S3Uri:
        return self._review("groundtruth-output/")

    @property
    def labelstudio_state(self) -> S3Uri:
        return self._review("labelstudio.json")

    @property
    def labelstudio_tasks(self) -> S3Uri:
        return self._review("labelstudio-tasks.jsonl")

    @property
    def labelstudio_images(self) -> S3Uri:
        """Copies of images whose keys Label Studio cannot load (review/labelstudio/images.py)."""
        return self._at("review/labelstudio-images/")

    @property
    def reviewed(self) -> S3Uri:
        return self._review("reviewed.jsonl")

    @property
    def manifest(self) -> S3Uri:
        return self._at("output.manifest")

    @property
    def skipped(self) -> S3Uri:
        return self._at("skipped.jsonl")

    @property
    def report(self) -> S3Uri:
        return self._at("report.json")

    @property
    def report_html(self) -> S3Uri:
        return self._at("report.html")

    @property
    def coco(self) -> S3Uri:
        return self._at("coco.json")

    @property
    def training_state(self) -> S3Uri:
        return self._at("training/state.json")

    @property
    def training_output(self) -> S3Uri:
        return self._at("training/output/")


def _part_name(part: int | str) -> str:
    """A part's name in a file name: a number as five digits (so names sort in batch order), a name
    (e.g. the review backend's) as it is."""
    return f"{part:05d}" if isinstance(part, int) else part
