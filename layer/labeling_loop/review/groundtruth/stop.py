"""Stop a run's labeling jobs that are still in progress, when the run ends without collecting them
(its failure path, or an execution aborted, timed out or failed outside its Catch). Otherwise the
jobs would keep sending images to reviewers for a run that will never collect the answers, and the
next run would review the same images again."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from labeling_loop.kernel.aws_clients import error_code
from labeling_loop.kernel.jsonl import read_json, read_jsonl
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.backend import StopResult

# Statuses in which a job still hands out tasks (docs/aws-facts.md §3.7).
IN_PROGRESS = frozenset({"Initializing", "InProgress"})


def _jobs(s3: Any, layout: RunLayout) -> list[dict[str, Any]]:
    """The run's labeling jobs, of both review waves."""
    jobs: list[dict[str, Any]] = []
    for wave in (1, 2):
        try:
            jobs.extend(read_json(s3, layout.for_wave(wave).review_jobs))
        except s3.exceptions.NoSuchKey:
            continue
    return jobs


def stop_run_jobs(s3: Any, sagemaker: Any, layout: RunLayout) -> StopResult:
    """StopLabelingJob for every job of the run still handing out tasks. A job that was never
    created, or has ended, needs nothing; one that could not be stopped is reported, with its images."""
    result = StopResult()
    for job in _jobs(s3, layout):
        name = job["jobName"]
        try:
            status = sagemaker.describe_labeling_job(LabelingJobName=name)["LabelingJobStatus"]
            if status in IN_PROGRESS:
                sagemaker.stop_labeling_job(LabelingJobName=name)
                result.stopped.append(name)
        except ClientError as error:
            if error_code(error) in ("ResourceNotFound", "ValidationException"):
                continue  # never created: nothing hands out its tasks
            result.unstoppable[name] = f"{error_code(error)}: {error}"
    if result.unstoppable:  # people may still answer their images: the run keeps those claims
        result.images_in_review = images_of(s3, layout, set(result.unstoppable))
    return result


def images_of(s3: Any, layout: RunLayout, job_names: set[str]) -> set[str]:
    """The images of these jobs (their input manifests)."""
    refs: set[str] = set()
    for job in _jobs(s3, layout):
        if job["jobName"] in job_names:
            for line in read_jsonl(s3, S3Uri.parse(job["inputManifestUri"]), missing_ok=True):
                refs.add(str(line["source-ref"]))
    return refs
