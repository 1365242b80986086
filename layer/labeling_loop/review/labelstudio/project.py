"""The Label Studio review backend's contract: create the run's project, check its progress,
collect the answers as normalized reviewed records and skip records."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from labeling_loop.kernel.errors import LabelStudioUnavailableError, ReviewBackendError
from labeling_loop.kernel.jsonl import JsonDict, JsonlWriter, read_json, read_jsonl, write_json
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import RunConfig, TaskType
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.answers import InvalidAnswer, run_labels
from labeling_loop.review.labelstudio.client import LabelStudioClient
from labeling_loop.review.labelstudio.convert import (
    MODEL_VERSION,
    label_config,
    reviewed_record,
    submitted_annotation,
    to_labelstudio_task,
    was_skipped,
)
from labeling_loop.review.labelstudio.task_index import TaskIndex
from labeling_loop.review.selection import PlanSummary

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_secretsmanager import SecretsManagerClient

logger = logging.getLogger(__name__)

IMPORT_CHUNK = 500  # tasks per import request: small bodies, bounded memory
EXPORT_CHUNK = 200  # task ids per export request
PRESIGN_TTL_MINUTES = 60  # each page view presigns again, so links outlive this by days

# --------------------------------------------------------------------------------------------
# The backend contract: create, check, collect
# --------------------------------------------------------------------------------------------


def review_title(run_id: str, wave: int = 1) -> str:
    """The run's project title, unique per run and review wave and within Label Studio's 50
    characters (a retried create finds the project by it)."""
    suffix = "" if wave == 1 else f" wave {wave}"
    title = f"Review {run_id}{suffix}"
    if len(title) <= 50:
        return title
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"Review {run_id[:34]}-{digest}{suffix}"


def _find_project(ls: LabelStudioClient, title: str) -> JsonDict | None:
    project: JsonDict
    for project in ls.paginate("/api/projects/", {"title": title, "page_size": 100}):
        if project.get("title") == title:
            return project
    return None


def _storage_body(
    project_id: int, images_bucket: str, images_prefix: str, s3_storage: Mapping[str, Any]
) -> JsonDict:
    credentials = s3_storage.get("credentials") or {}
    body: JsonDict = {
        "project": project_id,
        "title": f"images s3://{images_bucket}/{images_prefix}",
        "bucket": images_bucket,
        "prefix": images_prefix,
        "use_blob_urls": True,
        "presign": True,
        "presign_ttl": PRESIGN_TTL_MINUTES,
        "recursive_scan": True,
        "region_name": s3_storage.get("region"),
        # None on AWS; an S3-compatible endpoint elsewhere. Label Studio refuses loopback and
        # private endpoints here (SSRF protection): a local server is set with its S3_ENDPOINT.
        "s3_endpoint": s3_storage.get("endpoint_url"),
    }
    # Without credentials Label Studio uses its own (host role or AWS_* environment), which is
    # what a long review needs: a Lambda's temporary credentials expire within hours.
    for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
        if credentials.get(key):
            body[key] = credentials[key]
    if s3_storage.get("role_arn"):
        body["role_arn"] = s3_storage["role_arn"]  # Label Studio Enterprise only
    return body


def _ensure_storage(
    ls: LabelStudioClient,
    project_id: int,
    images_bucket: str,
    images_prefix: str,
    s3_storage: Mapping[str, Any],
) -> int:
    """Connect the images bucket as source storage, once. Never synced: our tasks are imported with
    their predictions; the storage only resolves `s3://` references into presigned URLs."""
    for storage in ls.get("/api/storages/s3/", {"project": project_id}) or []:
        if storage.get("bucket") == images_bucket:
            return int(storage["id"])
    created = ls.post(
        "/api/storages/s3/", _storage_body(project_id, images_bucket, images_prefix, s3_storage)
    )
    return int(created["id"])


def _project_tasks(ls: LabelStudioClient, project_id: int) -> Iterator[JsonDict]:
    """Every task of the project (without annotations), a page at a time."""
    yield from ls.paginate(
        "/api/tasks/",
        {"project": project_id, "page_size": 1000, "fields": "task_only", "resolve_uri": "false"},
        results_key="tasks",
    )


def _task_refs(ls: LabelStudioClient, project_id: int) -> dict[int, str]:
    """Label Studio task id -> the image it was imported for, read right after the import, while
    the data is still what the run wrote. Later, only the id of an exported task is trusted."""
    refs = {}
    for task in _project_tasks(ls, project_id):
        ref = (task.get("data") or {}).get("source_ref")
        if isinstance(ref, str):
            refs[int(task["id"])] = ref
    return refs


def _chunks(items: Iterable[JsonDict], size: int) -> Iterator[list[JsonDict]]:
    chunk: list[JsonDict] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _description(run_id: str, execution_arn: str, task_type: str) -> str:
    return f"Model-assisted review of run {run_id} ({task_type}); execution {execution_arn}"


@dataclass(frozen=True)
class ProjectSettings:
    """What a wave's review project is made of, built once from the run's RunConfig and plan
    (`from_config`)."""

    run_id: str
    execution_arn: str  # in the project's description: a retry finds its own project, never another's
    task_type: TaskType
    labels: list[str]
    images_bucket: str
    images_prefix: str
    # The project's S3 storage: region, endpoint_url (None on AWS), and optionally credentials or
    # role_arn (without them Label Studio uses its own, what a long review needs).
    s3_storage: Mapping[str, Any]
    title: str

    @classmethod
    def from_config(cls, config: RunConfig, plan: PlanSummary, *, region: str) -> ProjectSettings:
        """The plan's task type and labels, the run's images bucket as the project's storage (read
        with Label Studio's own credentials)."""
        images = S3Uri.parse(config.images).as_prefix()
        return cls(
            run_id=config.runId,
            execution_arn=config.executionArn,
            task_type=plan.task_type,
            labels=plan.labels,
            images_bucket=images.bucket,
            images_prefix=images.key,
            s3_storage={"region": region, "endpoint_url": None},
            title=review_title(config.runId, plan.wave),
        )


def _open_project(ls: LabelStudioClient, settings: ProjectSettings) -> tuple[int, set[str]]:
    """The run's project (made now, or found by its title after a retry) and the images already in it."""
    project = _find_project(ls, settings.title)
    if project is not None and settings.execution_arn not in str(project.get("description") or ""):
        raise ReviewBackendError(
            f"Label Studio at {ls.url} already has a project titled {settings.title!r} that another "
            "execution made"
        )
    if project is None:
        project = ls.post(
            "/api/projects/",
            {
                "title": settings.title,
                "description": _description(settings.run_id, settings.execution_arn, settings.task_type),
                "label_config": label_config(settings.task_type, settings.labels),
                "show_collab_predictions": True,  # pre-annotate with the model's labels
                "model_version": MODEL_VERSION,
                "maximum_annotations": 1,
            },
        )
        return int(project["id"]), set()
    already = set(_task_refs(ls, int(project["id"])).values())
    logger.info("resuming review project", extra={"projectId": project["id"], "tasksThere": len(already)})
    return int(project["id"]), already


def _import_tasks(
    s3: S3Client,
    ls: LabelStudioClient,
    layout: RunLayout,
    project_id: int,
    already: set[str],
    s3_storage: Mapping[str, Any],
) -> tuple[int, int]:
    """Import the review tasks not in the project yet; returns (tasks in the review, imported now)."""
    task_count = 0
    copies_storage: list[int] = []

    def fresh_tasks() -> Iterator[JsonDict]:
        nonlocal task_count
        for task in read_jsonl(s3, layout.review_tasks):
            task_count += 1
            if task.get("reviewImage") and not copies_storage:
                # Copies of images whose keys Label Studio cannot load live in the run's folder.
                copies = layout.labelstudio_images
                copies_storage.append(_ensure_storage(ls, project_id, copies.bucket, copies.key, s3_storage))
            if task["source-ref"] not in already:
                yield to_labelstudio_task(task)

    imported = 0
    for chunk in _chunks(fresh_tasks(), IMPORT_CHUNK):
        ls.post(f"/api/projects/{project_id}/import", chunk, params={"commit_to_project": "true"})
        imported += len(chunk)
    return task_count, imported


def create_review(
    s3: S3Client,
    ls: LabelStudioClient,
    layout: RunLayout,
    settings: ProjectSettings,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Create the run's review project from `review/tasks.jsonl`; return (and store in
    `review/labelstudio.json`) `{"projectId", "taskCount", "createdAt", "url"}`.

    Idempotent: a retried step returns the stored state, or finds the project by its title,
    reuses its storage and imports only the tasks that are not there yet. A project of that title
    made by another execution is refused, never shared. The ids of the imported tasks are written to
    `review/labelstudio-tasks.jsonl`: collect maps each exported task back to the run's own review
    task by id.
    """
    state_uri = layout.labelstudio_state
    try:
        stored = read_json(s3, state_uri)
    except s3.exceptions.NoSuchKey:
        stored = None
    if stored:
        logger.info(
            "review project exists", extra={"projectId": stored["projectId"], "runId": settings.run_id}
        )
        return dict(stored)

    project_id, already = _open_project(ls, settings)
    _ensure_storage(ls, project_id, settings.images_bucket, settings.images_prefix, settings.s3_storage)
    task_count, imported = _import_tasks(s3, ls, layout, project_id, already, settings.s3_storage)
    with JsonlWriter(s3, layout.labelstudio_tasks) as task_map:
        task_map.write_all(
            {"id": task_id, "source-ref": ref} for task_id, ref in _task_refs(ls, project_id).items()
        )
    created_at = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    state = {
        "projectId": project_id,
        "taskCount": task_count,
        "createdAt": created_at,
        "url": f"{ls.url}/projects/{project_id}/data",
    }
    write_json(s3, state_uri, state)
    logger.info("review project ready", extra={**state, "imported": imported})
    return state


def stored_state(s3: S3Client, layout: RunLayout) -> dict[str, Any]:
    """The run's project, as `create_review` stored it (`review/labelstudio.json`)."""
    return dict(read_json(s3, layout.labelstudio_state))


def read_token(secretsmanager: SecretsManagerClient, secret_arn: str) -> str:
    """The API token from Secrets Manager: the secret string is the token, or JSON `{"token": ...}`."""
    secret = str(secretsmanager.get_secret_value(SecretId=secret_arn)["SecretString"]).strip()
    if secret.startswith("{"):
        token = json.loads(secret).get("token", "")
        if not token:
            raise ReviewBackendError(f"secret {secret_arn} is JSON without a 'token' field")
        return str(token).strip()
    return secret


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def preflight(ls: LabelStudioClient) -> JsonDict:
    """Prove the server answers and accepts the token (who am I), without touching any project.
    Raises ReviewBackendError with the URL and HTTP status otherwise."""
    ls.get("/api/current-user/whoami")
    # Nothing of the server's answer goes into the execution history: only that it answered.
    return {"reachable": True, "authenticated": True}


def _answered_tasks(ls: LabelStudioClient, project_id: int) -> int:
    """Tasks with any answer, a submission or a Skip (Label Studio's project counters leave skipped
    tasks out of num_tasks_with_annotations, docs/aws-facts.md §6.2)."""
    return sum(
        1
        for task in _project_tasks(ls, project_id)
        if int(task.get("total_annotations") or 0) + int(task.get("cancelled_annotations") or 0) > 0
    )


def check_review(
    ls: LabelStudioClient, state: Mapping[str, Any], *, deadline_hours: float, now: datetime
) -> dict[str, Any]:
    """Progress of the review. `done` (what the state machine's poll loop leaves on) when every task
    has an answer (submitted, or skipped: collect reports skipped images as not reviewed), or when
    `deadline_hours` have passed since the project was created: collect then records the unanswered
    tasks as skipped. While Label Studio is unreachable the review is not done, unless the deadline
    has passed: a server restart or an outage of a few polls does not end a review of days."""
    current = now if now.tzinfo else now.replace(tzinfo=UTC)
    deadline_passed = current >= _parse_time(str(state["createdAt"])) + timedelta(hours=deadline_hours)
    project_id = int(state["projectId"])
    progress: dict[str, Any] = {"projectId": project_id, "deadlinePassed": deadline_passed}
    try:
        project = ls.get(f"/api/projects/{project_id}/")
        total = int(project.get("task_number") or 0)
        annotated = int(project.get("num_tasks_with_annotations") or 0)
        answered = annotated
        skipped = int(project.get("skipped_annotations_number") or 0)
        if skipped and total and annotated + skipped >= total:
            answered = _answered_tasks(ls, project_id)  # exact only when it can make a difference
    except LabelStudioUnavailableError as error:
        logger.warning("Label Studio unreachable during a review poll", extra={"error": str(error)})
        return {
            **progress,
            "reachable": False,
            "total": -1,
            "annotated": -1,
            "allAnswered": False,
            "done": deadline_passed,
        }
    all_answered = total > 0 and answered >= total
    return {
        **progress,
        "reachable": True,
        "total": total,
        "annotated": annotated,
        "answered": answered,
        "allAnswered": all_answered,
        "done": all_answered or deadline_passed,
    }


def _task_ids(ls: LabelStudioClient, project_id: int) -> Iterator[int]:
    for task in ls.paginate(
        "/api/tasks/",
        {"project": project_id, "page_size": 1000, "fields": "task_only", "resolve_uri": "false"},
        results_key="tasks",
    ):
        yield int(task["id"])


def _export(ls: LabelStudioClient, project_id: int) -> Iterator[JsonDict]:
    """The project's JSON export, a chunk of task ids at a time so memory stays flat."""
    ids = list(_task_ids(ls, project_id))
    for start in range(0, len(ids), EXPORT_CHUNK):
        params: list[tuple[str, Any]] = [("exportType", "JSON"), ("download_all_tasks", "true")]
        params += [("ids[]", task_id) for task_id in ids[start : start + EXPORT_CHUNK]]
        yield from ls.get(f"/api/projects/{project_id}/export", params) or []


def _skip(ref: str, reason: str, detail: str) -> JsonDict:
    return {"source-ref": ref, "stage": "review", "reason": reason, "detail": detail}


def collect_review(
    s3: S3Client, ls: LabelStudioClient, layout: RunLayout, state: dict[str, Any]
) -> dict[str, Any]:
    """Write `review/reviewed.jsonl` (one reviewed record per answered image) and
    `skipped/review-labelstudio.jsonl` (one skip record per other image of the review): every
    review task of the run ends in exactly one of them, whatever happened in Label Studio.

    Each exported task is mapped back to the run's own review task by its id; its data in Label
    Studio is never read. Unanswered, skipped and deleted tasks are `not-reviewed`; an answer that
    cannot be read or used (edited outside the labeling UI) is skipped for that image only, with
    its reason (`invalid-annotation`, `invalid-box`, `too-many-boxes`, `unknown-label`, ...).
    """
    project_id = int(state["projectId"])
    labels = run_labels(s3, layout)
    task_refs = {int(row["id"]): str(row["source-ref"]) for row in read_jsonl(s3, layout.labelstudio_tasks)}
    counts = {"kept": 0, "adjusted": 0, "added": 0, "removed": 0}
    foreign = 0
    skipped_uri = layout.skipped_part("review", "labelstudio")
    where = f"Label Studio project {project_id}"
    with (
        TaskIndex(read_jsonl(s3, layout.review_tasks)) as ours,
        JsonlWriter(s3, layout.reviewed) as reviewed,
        JsonlWriter(s3, skipped_uri) as skipped,
    ):
        for task in _export(ls, project_id):
            ref = task_refs.get(int(task.get("id") or -1)) if isinstance(task, Mapping) else None
            ours_task = ours.take(ref) if ref is not None else None
            if ref is None or ours_task is None:
                foreign += 1  # a task this run did not import (or a duplicate): not the run's image
                continue
            annotation = submitted_annotation(task)
            if annotation is None:
                why = "skipped by the reviewer" if was_skipped(task) else "no submitted annotation"
                skipped.write(_skip(ref, "not-reviewed", f"{why} in {where} (task {task.get('id')})"))
                continue
            try:
                record = reviewed_record(annotation, ours_task, project_id, labels)
            except InvalidAnswer as error:
                skipped.write(_skip(ref, error.reason, f"{where}, task {task.get('id')}: {error}"))
                continue
            reviewed.write(record)
            for item in record["boxes"] + record["labels"]:
                counts[item["status"]] += 1
            counts["removed"] += len(record["removed"])
        for ref in ours.untaken():
            skipped.write(_skip(ref, "not-reviewed", f"its task is no longer in {where} (deleted)"))
    summary = {
        "projectId": project_id,
        "reviewed": reviewed.count,
        "skipped": skipped.count,
        "foreignTasks": foreign,
        "counts": counts,
    }
    logger.info("review collected", extra=summary)
    return summary
