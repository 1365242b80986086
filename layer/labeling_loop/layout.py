"""Where a run's files live in S3 (see docs/data-contracts.md). One prefix per execution, so a user
can open it in the S3 console and follow what happened."""

from __future__ import annotations

from dataclasses import dataclass

from labeling_loop.s3_uri import S3Uri


@dataclass(frozen=True)
class RunLayout:
    root: S3Uri  # s3://<outputBucket>/<outputPrefix>/<runId>/

    @classmethod
    def for_run(cls, output: S3Uri, run_id: str) -> RunLayout:
        return cls(output.as_prefix().join(run_id).as_prefix())

    def _at(self, name: str) -> S3Uri:
        return self.root.join(name)

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
        suffix = f"{part:05d}" if isinstance(part, int) else part
        return self._at(f"predictions/batch-{suffix}.jsonl")

    @property
    def skipped_prefix(self) -> S3Uri:
        return self._at("skipped/")

    def skipped_part(self, stage: str, part: int | str) -> S3Uri:
        suffix = f"{part:05d}" if isinstance(part, int) else part
        return self._at(f"skipped/{stage}-{suffix}.jsonl")

    @property
    def deferred_prefix(self) -> S3Uri:
        return self._at("deferred/")

    def deferred_part(self, stage: str, part: int | str) -> S3Uri:
        suffix = f"{part:05d}" if isinstance(part, int) else part
        return self._at(f"deferred/{stage}-{suffix}.jsonl")

    @property
    def deferred(self) -> S3Uri:
        return self._at("deferred.jsonl")

    @property
    def review_tasks(self) -> S3Uri:
        return self._at("review/tasks.jsonl")

    @property
    def auto_accepted(self) -> S3Uri:
        return self._at("review/auto_accepted.jsonl")

    @property
    def audit(self) -> S3Uri:
        return self._at("review/audit.jsonl")

    @property
    def review_jobs(self) -> S3Uri:
        return self._at("review/jobs.json")

    @property
    def review_plan(self) -> S3Uri:
        return self._at("review/plan.json")

    def groundtruth_job_prefix(self, job_name: str) -> S3Uri:
        return self._at(f"review/groundtruth/{job_name}/")

    @property
    def groundtruth_output(self) -> S3Uri:
        return self._at("review/groundtruth-output/")

    @property
    def labelstudio_state(self) -> S3Uri:
        return self._at("review/labelstudio.json")

    @property
    def labelstudio_tasks(self) -> S3Uri:
        return self._at("review/labelstudio-tasks.jsonl")

    @property
    def labelstudio_images(self) -> S3Uri:
        """Copies of images whose keys Label Studio cannot load (review/labelstudio/images.py)."""
        return self._at("review/labelstudio-images/")

    @property
    def reviewed(self) -> S3Uri:
        return self._at("review/reviewed.jsonl")

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
