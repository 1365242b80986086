"""The label-verification custom task's two Lambda cores: pre-annotation (a manifest line -> the
template's `task.input`) and consolidation (every worker's answer -> one majority vote per image).

Ground Truth has no built-in verification task for image-level labels, so this project brings its
own (docs/aws-facts.md §3.5 for the event and answer contracts).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.jsonl import JsonDict, read_json
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.groundtruth.jobs import CLASSIFICATION_ATTRIBUTE, PREDICTIONS_ATTRIBUTE

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


def pre_annotate(event: JsonDict) -> JsonDict:
    """Pre-annotation: turn the manifest line (`dataObject`) into the template's `task.input`."""
    data_object = event.get("dataObject") or {}
    source = data_object.get("source-ref")
    if not isinstance(source, str) or not source:
        raise InvalidInput("dataObject.source-ref is missing from the pre-annotation event")
    predictions = data_object.get(PREDICTIONS_ATTRIBUTE) or {}
    predicted: list[str] = []
    for item in predictions.get("labels", []):
        label = item.get("label") if isinstance(item, dict) else item
        if isinstance(label, str) and label not in predicted:
            predicted.append(label)
    label_set = [label for label in predictions.get("label-set", []) if isinstance(label, str)]
    # A predicted label missing from the set would have no checkbox and could never be unticked.
    label_set += [label for label in predicted if label not in label_set]
    return {
        "taskInput": {"taskObject": source, "predicted": predicted, "labels": label_set},
        "isHumanAnnotationRequired": True,
    }


def _parse_json_text(text: str | bytes) -> Any:
    # A malformed answer counts as no answer: failing here would fail the whole batch's objects.
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def _worker_answer(annotation: JsonDict, s3: S3Client) -> JsonDict | None:
    """A worker's form answer, from `annotationData.content` (JSON text) or `annotationData.s3Uri`."""
    data = annotation.get("annotationData") or {}
    if data.get("content") is not None:
        answer = data["content"]
        answer = _parse_json_text(answer) if isinstance(answer, str | bytes) else answer
    elif data.get("s3Uri"):
        uri = S3Uri.parse(data["s3Uri"])
        answer = _parse_json_text(s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read())
    else:
        return None
    return answer if isinstance(answer, dict) else None


def _checkbox_on(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, dict) and value:
        # `{"on": true}` for a lone checkbox; one value-named key otherwise.
        return bool(value.get("on", any(bool(v) for v in value.values())))
    return None


def worker_votes(answer: JsonDict) -> dict[str, bool]:
    """Label -> ticked, from one answer of our template.

    Accepted shapes: `{"labels": {"<label>": true|false}}` (our template: shared checkbox name),
    `{"labels": {"<label>": {"on": bool}}}` (data-contracts.md) and `{"<label>": {"on": bool}}`
    (one checkbox named after each label).
    """
    nested = answer.get("labels")
    source: JsonDict = nested if isinstance(nested, dict) else answer
    votes: dict[str, bool] = {}
    for label, value in source.items():
        if label == "predicted":
            continue
        on = _checkbox_on(value)
        if on is not None:
            votes[label] = on
    return votes


def _answer_predicted(answer: JsonDict) -> list[str] | None:
    value = answer.get("predicted")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def consolidate_object(answers: list[JsonDict], predicted: list[str]) -> JsonDict:
    """Majority vote per label across workers; a tie keeps the label's predicted state."""
    tally: dict[str, list[int]] = {label: [0, 0] for label in predicted}
    for answer in answers:
        for label, on in worker_votes(answer).items():
            tally.setdefault(label, [0, 0])[0 if on else 1] += 1
    final = []
    for label, (yes, no) in tally.items():
        if yes > no or (yes == no and label in predicted):
            final.append(label)
    return {
        "labels": sorted(final),
        "rejected": sorted(label for label in predicted if label not in final),
        "added": sorted(label for label in final if label not in predicted),
        "workers": len(answers),
    }


def consolidate(event: JsonDict, s3: S3Client) -> list[JsonDict]:
    """Consolidation (post-annotation) Lambda core for label verification.

    Reads the request file at `payload.s3Uri`; objects nobody answered are left out (Ground Truth
    marks them failed). Returns the documented `[{datasetObjectId, consolidatedAnnotation}]` list.
    """
    attribute = event.get("labelAttributeName") or CLASSIFICATION_ATTRIBUTE
    payload_uri = (event.get("payload") or {}).get("s3Uri")
    if not payload_uri:
        raise InvalidInput("payload.s3Uri is missing from the consolidation event")
    objects = read_json(s3, S3Uri.parse(payload_uri))
    results: list[JsonDict] = []
    for obj in objects:
        answers = [a for a in (_worker_answer(x, s3) for x in obj.get("annotations") or []) if a is not None]
        if not answers:
            continue
        predicted = next((p for p in map(_answer_predicted, answers) if p is not None), [])
        results.append(
            {
                "datasetObjectId": obj["datasetObjectId"],
                "consolidatedAnnotation": {"content": {attribute: consolidate_object(answers, predicted)}},
            }
        )
    return results
