"""Label Studio review backend: create the review project, check its progress, collect the answers.

Why a hand-written client over the standard library (`http.client`) rather than `requests` or the
official `label-studio-sdk`: the backend needs seven REST calls. The SDK pulls in httpx, pydantic,
lxml, numpy and more (tens of MB in the layer, slower cold starts, version pins that fight the
layer's pydantic), and `requests` is not in the Lambda runtime either. `http.client` gives what
matters here that `urllib.request` does not: a short *connect* timeout separate from the *read*
timeout, so an unreachable server fails in seconds while a large export may still take a minute.

Formats (docs/data-contracts.md): review tasks in, reviewed records and skip records out. Label
Studio stores boxes in percent of the image (x, y, width, height, rotation around the top-left
corner); the run's files use pixels of the displayed image. Conversions are private helpers here
(`_box_to_percent`, `_percent_to_box`), exact in floating point, rounded only at the very end.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import escape, quoteattr

from labeling_loop.errors import ReviewBackendError
from labeling_loop.geometry import iou_of_dicts
from labeling_loop.jsonl import JsonDict, JsonlWriter, read_json, read_jsonl, write_json
from labeling_loop.layout import RunLayout

logger = logging.getLogger(__name__)

TaskType = Literal["detection", "classification"]

# Names inside the labeling config; predictions and annotations refer to them.
IMAGE_TAG = "image"
BOX_TAG = "label"
CHOICES_TAG = "labels"
MODEL_VERSION = "rekognition-custom-labels"

KEPT_TOLERANCE_PX = 0.5  # same label and every side within half a pixel: the reviewer kept it
ADJUSTED_MIN_IOU = 0.5  # overlapping at least this much: the reviewer moved/resized/relabelled it
IMPORT_CHUNK = 500  # tasks per import request: small bodies, bounded memory
EXPORT_CHUNK = 200  # task ids per export request
PRESIGN_TTL_MINUTES = 60  # each page view presigns again, so links outlive this by days


# --------------------------------------------------------------------------------------------
# REST client
# --------------------------------------------------------------------------------------------


def _is_jwt(token: str) -> bool:
    """A personal access token is a JWT (header.payload.signature); a legacy token is a hex key."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(_b64url(parts[0]))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and "alg" in header


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _jwt_expiry(token: str) -> float | None:
    try:
        exp = json.loads(_b64url(token.split(".")[1])).get("exp")
    except (ValueError, IndexError, binascii.Error):
        return None
    return float(exp) if isinstance(exp, int | float) else None


class LabelStudioClient:
    """The few Label Studio REST calls the review backend makes, with its own retries.

    `token` may be a personal access token (a JWT refresh token, Label Studio >= 1.17's default):
    it is exchanged at POST /api/token/refresh/ for a short-lived access token sent as
    `Authorization: Bearer`, renewed before it expires. Any other string is a legacy token, sent as
    `Authorization: Token` (the organization must have legacy tokens enabled).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 60.0,
        retries: int = 2,
        backoff_seconds: float = 0.5,
    ) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReviewBackendError(f"Label Studio URL {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base_path = parts.path
        self._token = token.strip()
        self.token_kind: Literal["personal", "legacy"] = "personal" if _is_jwt(self._token) else "legacy"
        self._access: str | None = None
        self._access_expiry = 0.0
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = retries
        self.backoff_seconds = backoff_seconds

    # -- public helpers ------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, params=params, body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body=body)

    def paginate(self, path: str, params: Mapping[str, Any], results_key: str = "results") -> Iterator[Any]:
        """Yield the items of a page-numbered list endpoint (`page`, `page_size`) to its end.

        Projects answer `{"results", "next"}`, the data manager's task list `{"tasks", "total"}`."""
        page_size = int(params.get("page_size", 100))
        seen = 0
        for page in range(1, 1_000_000):
            data = self.get(path, {**params, "page": page})
            items = data.get(results_key) or [] if isinstance(data, dict) else data or []
            yield from items
            seen += len(items)
            # Trust the server's own end marker: it may cap page_size below what was asked.
            if not items or not isinstance(data, dict):
                return
            if "next" in data:
                if not data["next"]:
                    return
            elif "total" in data:
                if seen >= int(data["total"]):
                    return
            elif len(items) < page_size:
                return

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        body: Any = None,
        authenticate: bool = True,
    ) -> Any:
        """Send one JSON request; return the decoded body (None when empty).

        Raises ReviewBackendError naming the URL and HTTP status when the server cannot be reached
        after the retries, rejects the token, or refuses the request. An expired access token is
        refreshed once on 401.
        """
        target = self._base_path + path + (f"?{urlencode(params, doseq=True)}" if params else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        for auth_attempt in range(2):
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            if authenticate:
                headers["Authorization"] = self._authorization(force_refresh=auth_attempt > 0)
            status, payload = self._send(method, target, data, headers)
            if status == 401 and authenticate and self.token_kind == "personal" and auth_attempt == 0:
                continue  # the access token may have expired between check and use
            break
        if status in (401, 403):
            raise ReviewBackendError(
                f"Label Studio at {self.url} rejected the {self.token_kind} token "
                f"(HTTP {status} on {method} {path}): {_detail(payload)}"
            )
        if status >= 400:
            raise ReviewBackendError(
                f"Label Studio at {self.url} refused {method} {path} (HTTP {status}): {_detail(payload)}"
            )
        if not payload.strip():
            return None
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise ReviewBackendError(
                f"Label Studio at {self.url} answered {method} {path} with non-JSON (HTTP {status})"
            ) from exc

    # -- internals -----------------------------------------------------------------------------

    def _authorization(self, *, force_refresh: bool = False) -> str:
        if self.token_kind == "legacy":
            return f"Token {self._token}"
        if force_refresh or self._access is None or time.time() > self._access_expiry - 30:
            answer = self.request(
                "POST", "/api/token/refresh/", body={"refresh": self._token}, authenticate=False
            )
            access = answer.get("access") if isinstance(answer, dict) else None
            if not access:
                raise ReviewBackendError(f"Label Studio at {self.url} gave no access token for the PAT")
            self._access = access
            # Without an `exp` claim, refresh every few minutes (Label Studio's default is 5 min).
            self._access_expiry = _jwt_expiry(access) or time.time() + 240
        return f"Bearer {self._access}"

    def _connection(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.connect_timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.connect_timeout)

    def _send(
        self, method: str, target: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """One HTTP exchange with retries on connection failures and 502/503/504.

        Only failures where the server cannot have acted are retried (refused/timed-out connects,
        gateway errors), so a retried POST never imports the same tasks twice.
        """
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            conn = self._connection()
            try:
                try:
                    conn.connect()
                except OSError as exc:  # refused, unreachable, DNS, connect timeout
                    last_error = f"{type(exc).__name__}: {exc}"
                    continue
                if conn.sock is not None:
                    conn.sock.settimeout(self.read_timeout)
                try:
                    conn.request(method, target, body=data, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                except TimeoutError as exc:
                    raise ReviewBackendError(
                        f"Label Studio at {self.url} did not answer {method} {target} "
                        f"within {self.read_timeout:g} s"
                    ) from exc
                except (OSError, http.client.HTTPException) as exc:
                    raise ReviewBackendError(
                        f"Label Studio at {self.url} dropped {method} {target}: {exc}"
                    ) from exc
                if response.status in (502, 503, 504) and attempt < self.retries:
                    last_error = f"HTTP {response.status}"
                    continue
                return response.status, payload
            finally:
                conn.close()
        raise ReviewBackendError(
            f"Label Studio at {self.url} is unreachable after {self.retries + 1} attempts: {last_error}"
        )


def _detail(payload: bytes) -> str:
    """The server's own explanation, short: DRF answers `{"detail": ...}`."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return payload[:200].decode("utf-8", "replace") or "(empty body)"
    if isinstance(doc, dict) and "detail" in doc:
        return str(doc["detail"])[:300]
    return json.dumps(doc)[:300]


# --------------------------------------------------------------------------------------------
# Labeling config and tasks (pure)
# --------------------------------------------------------------------------------------------


def label_config(task_type: TaskType, labels: Sequence[str]) -> str:
    """The labeling interface: boxes for detection, a multiple-choice list for classification."""
    if not labels:
        raise ValueError("the label set is empty")
    if task_type == "detection":
        items = "".join(f"\n    <Label value={quoteattr(label)}/>" for label in labels)
        control = f'  <RectangleLabels name="{BOX_TAG}" toName="{IMAGE_TAG}">{items}\n  </RectangleLabels>'
    elif task_type == "classification":
        items = "".join(f"\n    <Choice value={quoteattr(label)}/>" for label in labels)
        control = (
            f'  <Choices name="{CHOICES_TAG}" toName="{IMAGE_TAG}" choice="multiple" showInLine="true">'
            f"{items}\n  </Choices>"
        )
    else:
        raise ValueError(f"unknown task type {task_type!r}")
    header = escape("Check the model's labels: keep, fix, delete or add")
    return (
        f'<View>\n  <Header value="{header}"/>\n'
        f'  <Image name="{IMAGE_TAG}" value="${IMAGE_TAG}" zoom="true"/>\n{control}\n</View>'
    )


def _box_to_percent(box: Mapping[str, float], width: float, height: float) -> dict[str, float]:
    """Pixels of the displayed image -> Label Studio's percent of it."""
    return {
        "x": box["left"] * 100.0 / width,
        "y": box["top"] * 100.0 / height,
        "width": box["width"] * 100.0 / width,
        "height": box["height"] * 100.0 / height,
    }


def _percent_to_box(value: Mapping[str, Any], width: float, height: float) -> dict[str, float]:
    """Label Studio's percent (with an optional rotation around the top-left corner, in degrees)
    -> the axis-aligned pixel box that contains it. Unrounded."""
    left = float(value["x"]) * width / 100.0
    top = float(value["y"]) * height / 100.0
    w = float(value["width"]) * width / 100.0
    h = float(value["height"]) * height / 100.0
    rotation = float(value.get("rotation") or 0.0) % 360.0
    if rotation:
        # Rotate in pixel space: percent axes have different scales.
        cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
        xs = [left + dx * cos - dy * sin for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
        ys = [top + dx * sin + dy * cos for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
        left, top, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return {"left": left, "top": top, "width": w, "height": h}


def _round_clip(box: Mapping[str, float], width: int, height: int) -> dict[str, int]:
    """Integer pixels inside the image. Edges are rounded, not sizes, so errors do not add up."""
    x0 = min(max(round(box["left"]), 0), width)
    y0 = min(max(round(box["top"]), 0), height)
    x1 = min(max(round(box["left"] + box["width"]), 0), width)
    y1 = min(max(round(box["top"] + box["height"]), 0), height)
    return {"left": x0, "top": y0, "width": x1 - x0, "height": y1 - y0}


def _same_geometry(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return all(abs(a[k] - b[k]) <= KEPT_TOLERANCE_PX for k in ("left", "top", "width", "height"))


def to_labelstudio_task(task: Mapping[str, Any]) -> JsonDict:
    """One review task (docs/data-contracts.md) -> a Label Studio task with pre-annotations.

    `data.image` is the `s3://` source-ref: Label Studio resolves it through the project's S3
    storage into a presigned URL each time a reviewer opens the task.
    """
    source = task["source-ref"]
    size = task["image_size"]
    width, height = int(size["width"]), int(size["height"])
    data = {
        IMAGE_TAG: source,
        "source_ref": source,
        "image_size": dict(size),
        "taskType": task["taskType"],
        "predicted": list(task.get("predictions", [])),  # what collect compares the answer with
    }
    result: list[JsonDict] = []
    scores: list[float] = []
    for index, prediction in enumerate(task.get("predictions", [])):
        confidence = prediction.get("confidence")
        if confidence is not None:
            scores.append(float(confidence) / 100.0)
        if task["taskType"] == "detection":
            if "box" not in prediction:
                continue
            value = {**_box_to_percent(prediction["box"], width, height), "rotation": 0}
            result.append(
                {
                    "id": f"p{index}",
                    "from_name": BOX_TAG,
                    "to_name": IMAGE_TAG,
                    "type": "rectanglelabels",
                    "original_width": width,
                    "original_height": height,
                    "image_rotation": 0,
                    "value": {**value, "rectanglelabels": [prediction["label"]]},
                    **({"score": float(confidence) / 100.0} if confidence is not None else {}),
                }
            )
    if task["taskType"] == "classification":
        chosen = [p["label"] for p in task.get("predictions", [])]
        if chosen:
            result.append(
                {
                    "id": "p0",
                    "from_name": CHOICES_TAG,
                    "to_name": IMAGE_TAG,
                    "type": "choices",
                    "value": {"choices": chosen},
                }
            )
    ls_task: JsonDict = {"data": data}
    if result:
        prediction_doc: JsonDict = {"model_version": MODEL_VERSION, "result": result}
        if scores:
            prediction_doc["score"] = min(scores)  # sort the queue by the least sure label
        ls_task["predictions"] = [prediction_doc]
    return ls_task


# --------------------------------------------------------------------------------------------
# Status derivation (pure)
# --------------------------------------------------------------------------------------------


@dataclass
class BoxOutcome:
    boxes: list[JsonDict] = field(default_factory=list)  # final boxes with status
    removed: list[JsonDict] = field(default_factory=list)


def derive_box_statuses(
    predicted: Sequence[Mapping[str, Any]], answered: Sequence[Mapping[str, Any]], width: int, height: int
) -> BoxOutcome:
    """Compare the reviewer's boxes with the model's, both `{label, left, top, width, height}` in
    (unrounded) pixels. Kept: same label, every side within 0.5 px. Adjusted: the best remaining
    overlap with IoU >= 0.5 (moved, resized or relabelled). Added: the reviewer's boxes left over.
    Removed: the model's boxes left over. Output pixels are integers clipped to the image; a kept
    box keeps the prediction's exact pixels."""
    free_pred = list(range(len(predicted)))
    matched: dict[int, tuple[int, str]] = {}  # answered index -> (predicted index, status)
    for a_index, box in enumerate(answered):
        for p_index in free_pred:
            pred = predicted[p_index]
            if pred["label"] == box["label"] and _same_geometry(pred, box):
                matched[a_index] = (p_index, "kept")
                free_pred.remove(p_index)
                break
    pairs = sorted(
        (
            (iou_of_dicts(answered[a], predicted[p]), a, p)
            for a in range(len(answered))
            if a not in matched
            for p in free_pred
        ),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    for overlap, a_index, p_index in pairs:
        if overlap < ADJUSTED_MIN_IOU:
            break
        if a_index in matched or p_index not in free_pred:
            continue
        matched[a_index] = (p_index, "adjusted")
        free_pred.remove(p_index)
    outcome = BoxOutcome()
    for a_index, box in enumerate(answered):
        p_index, status = matched.get(a_index, (-1, "added"))
        source = predicted[p_index] if status == "kept" else box
        outcome.boxes.append({"label": box["label"], **_round_clip(source, width, height), "status": status})
    for p_index in free_pred:
        pred = predicted[p_index]
        outcome.removed.append({"label": pred["label"], **_round_clip(pred, width, height)})
    return outcome


def derive_label_statuses(
    predicted: Sequence[str], answered: Sequence[str]
) -> tuple[list[JsonDict], list[JsonDict]]:
    """Classification: labels the reviewer left checked are kept, newly checked added, unchecked
    predictions removed."""
    predicted_set = set(predicted)
    answered_unique = list(dict.fromkeys(answered))
    labels = [
        {"label": label, "status": "kept" if label in predicted_set else "added"} for label in answered_unique
    ]
    removed = [{"label": label} for label in dict.fromkeys(predicted) if label not in set(answered_unique)]
    return labels, removed


def _boxes_from_result(result: Iterable[Mapping[str, Any]], width: int, height: int) -> list[JsonDict]:
    boxes = []
    for item in result:
        if item.get("type") != "rectanglelabels" or item.get("from_name", BOX_TAG) != BOX_TAG:
            continue
        value = item.get("value", {})
        names = value.get("rectanglelabels") or []
        if not names:
            continue
        # Label Studio records the size it displayed; our image_size is the authority when absent.
        w = float(item.get("original_width") or width)
        h = float(item.get("original_height") or height)
        boxes.append({"label": names[0], **_percent_to_box(value, w, h)})
    return boxes


def _choices_from_result(result: Iterable[Mapping[str, Any]]) -> list[str]:
    chosen: list[str] = []
    for item in result:
        if item.get("type") == "choices" and item.get("from_name", CHOICES_TAG) == CHOICES_TAG:
            chosen.extend(item.get("value", {}).get("choices", []))
    return chosen


def _submitted_annotation(task: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The latest answer a reviewer submitted (not skipped); None when nobody answered."""
    answers = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
    if not answers:
        return None
    return max(answers, key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a.get("id") or 0))


def reviewed_record(task: Mapping[str, Any], project_id: int) -> JsonDict | None:
    """An exported Label Studio task -> a reviewed record, or None when nobody answered it."""
    annotation = _submitted_annotation(task)
    if annotation is None:
        return None
    data = task["data"]
    size = data["image_size"]
    width, height = int(size["width"]), int(size["height"])
    record: JsonDict = {
        "source-ref": data["source_ref"],
        "taskType": data["taskType"],
        "image_size": {"width": width, "height": height, "depth": int(size.get("depth", 3))},
        "boxes": [],
        "labels": [],
        "removed": [],
        "reviewer": f"labelstudio:{project_id}",
        "humanReviewed": True,
    }
    answer = annotation.get("result") or []
    # The model's labels come from the task data (exact pixels from review/tasks.jsonl), not from
    # Label Studio's prediction objects, which its JSON export lists only by id.
    predicted = data.get("predicted", [])
    if data["taskType"] == "detection":
        outcome = derive_box_statuses(
            [{"label": p["label"], **p["box"]} for p in predicted if "box" in p],
            _boxes_from_result(answer, width, height),
            width,
            height,
        )
        record["boxes"], record["removed"] = outcome.boxes, outcome.removed
    else:
        record["labels"], record["removed"] = derive_label_statuses(
            [p["label"] for p in predicted], _choices_from_result(answer)
        )
    return record


# --------------------------------------------------------------------------------------------
# The backend contract: create, check, collect
# --------------------------------------------------------------------------------------------


def review_title(run_id: str) -> str:
    """The run's project title, unique per run and within Label Studio's 50 characters (a
    retried create finds the project by it)."""
    title = f"Review {run_id}"
    if len(title) <= 50:
        return title
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"Review {run_id[:34]}-{digest}"


def _find_project(ls: LabelStudioClient, title: str) -> JsonDict | None:
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


def _imported_refs(ls: LabelStudioClient, project_id: int) -> set[str]:
    """Source-refs already in a project that an interrupted attempt made (retry path only)."""
    refs: set[str] = set()
    for task in ls.paginate(
        "/api/tasks/",
        {"project": project_id, "page_size": 1000, "fields": "task_only", "resolve_uri": "false"},
        results_key="tasks",
    ):
        ref = task.get("data", {}).get("source_ref")
        if ref:
            refs.add(ref)
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


def create_review(
    s3: Any,
    ls: LabelStudioClient,
    layout: RunLayout,
    *,
    run_id: str,
    task_type: TaskType,
    labels: list[str],
    images_bucket: str,
    images_prefix: str,
    s3_storage: dict[str, Any],
    title: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Create the run's review project from `review/tasks.jsonl`; return (and store in
    `review/labelstudio.json`) `{"projectId", "taskCount", "createdAt", "url"}`.

    Idempotent: a retried step returns the stored state, or finds the project by its title,
    reuses its storage and imports only the tasks that are not there yet.
    """
    state_uri = layout.labelstudio_state
    try:
        stored = read_json(s3, state_uri)
    except s3.exceptions.NoSuchKey:
        stored = None
    if stored:
        logger.info("review project exists", extra={"projectId": stored["projectId"], "runId": run_id})
        return dict(stored)

    project = _find_project(ls, title)
    if project is None:
        project = ls.post(
            "/api/projects/",
            {
                "title": title,
                "description": f"Model-assisted review of run {run_id} ({task_type})",
                "label_config": label_config(task_type, labels),
                "show_collab_predictions": True,  # pre-annotate with the model's labels
                "model_version": MODEL_VERSION,
                "maximum_annotations": 1,
            },
        )
        already: set[str] = set()
    else:
        already = _imported_refs(ls, int(project["id"]))
        logger.info("resuming review project", extra={"projectId": project["id"], "tasksThere": len(already)})
    project_id = int(project["id"])
    _ensure_storage(ls, project_id, images_bucket, images_prefix, s3_storage)

    task_count = 0

    def fresh_tasks() -> Iterator[JsonDict]:
        nonlocal task_count
        for task in read_jsonl(s3, layout.review_tasks):
            task_count += 1
            if task["source-ref"] not in already:
                yield to_labelstudio_task(task)

    imported = 0
    for chunk in _chunks(fresh_tasks(), IMPORT_CHUNK):
        ls.post(f"/api/projects/{project_id}/import", chunk, params={"commit_to_project": "true"})
        imported += len(chunk)
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


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def preflight(ls: LabelStudioClient) -> JsonDict:
    """Prove the server answers and accepts the token (who am I), without touching any project.
    Raises ReviewBackendError with the URL and HTTP status otherwise."""
    user = ls.get("/api/current-user/whoami")
    return {"url": ls.url, "user": str(user.get("email") or user.get("username") or user.get("id", ""))}


def check_review(
    ls: LabelStudioClient, state: dict[str, Any], *, deadline_iso: str, now: datetime
) -> dict[str, Any]:
    """Progress of the review: done when every task has a submitted answer; the deadline ends it
    otherwise (unanswered tasks are then recorded as skipped by collect)."""
    project = ls.get(f"/api/projects/{int(state['projectId'])}/")
    total = int(project.get("task_number") or 0)
    annotated = int(project.get("num_tasks_with_annotations") or 0)
    current = now if now.tzinfo else now.replace(tzinfo=UTC)
    return {
        "projectId": int(state["projectId"]),
        "total": total,
        "annotated": annotated,
        "done": total > 0 and annotated >= total,
        "deadlinePassed": current >= _parse_time(deadline_iso),
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


def collect_review(
    s3: Any, ls: LabelStudioClient, layout: RunLayout, state: dict[str, Any]
) -> dict[str, Any]:
    """Write `review/reviewed.jsonl` (one reviewed record per answered task) and
    `skipped/review-labelstudio.jsonl` (one `not-reviewed` skip record per unanswered task)."""
    project_id = int(state["projectId"])
    counts = {"kept": 0, "adjusted": 0, "added": 0, "removed": 0}
    skipped_uri = layout.skipped_part("review", "labelstudio")
    with JsonlWriter(s3, layout.reviewed) as reviewed, JsonlWriter(s3, skipped_uri) as skipped:
        for task in _export(ls, project_id):
            record = reviewed_record(task, project_id)
            if record is None:
                skipped.write(
                    {
                        "source-ref": task["data"]["source_ref"],
                        "stage": "review",
                        "reason": "not-reviewed",
                        "detail": f"no submitted annotation in Label Studio project {project_id} "
                        f"(task {task.get('id')})",
                    }
                )
                continue
            reviewed.write(record)
            for item in record["boxes"] + record["labels"]:
                counts[item["status"]] += 1
            counts["removed"] += len(record["removed"])
    summary = {
        "projectId": project_id,
        "reviewed": reviewed.count,
        "skipped": skipped.count,
        "reviewedUri": str(layout.reviewed),
        "skippedUri": str(skipped_uri),
        "counts": counts,
    }
    logger.info("review collected", extra=summary)
    return summary
