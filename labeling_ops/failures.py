"""How a failed run is told to a person: one line with the error, its cause and what to do, never
a Lambda's stack trace or a service's raw answer.

An execution's `cause` is whatever the failing state left: a Lambda's error document (JSON with
`errorType`, `errorMessage` and `stackTrace`), the cleanup's `States.X: <original cause>`, or a
service's message. `one_line` keeps the message and drops the rest. What to do per error is the
README's troubleshooting table (tests/contract/test_readme_tables.py keeps the two naming the same
errors).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_CAUSE_CHARS = 400

# error name -> what to do (the README's "Troubleshooting" table, in short).
FIXES = {
    "InvalidInput": "fix that field; `labeling-loop start --dry-run` checks an input without starting",
    "ModelNotFoundError": "check projectVersionArn (aws rekognition describe-project-versions)",
    "ModelStartFailedError": "the model's StatusMessage says why, often a quota of inference units",
    "ModelStartTimeoutError": "raise modelStartTimeoutMinutes, or start the model by hand before the run",
    "InferenceFailedError": "the cause names the bucket and region; skipped/inference-*.jsonl lists images",
    "ReviewBackendError": "check the token's secret, the token kind and LabelStudioUrl",
    "LabelStudioUnavailableError": "check that Label Studio is up and reachable from the functions",
    "ManifestValidationError": "a bug: report it with the cause",
    "StatesExceedToleratedFailureThresholdError": "the Map Run in the console shows which item failed",
    "StatesTimeoutError": "a Step Functions timeout; the cause starts with the original error",
    "ExecutionAborted": "someone stopped the run; `labeling-loop stop RUN` shows what the cleanup did",
    "CleanupFailedError": "the model may still be running: check it and stop it by hand",
    "SageMaker.ResourceLimitExceeded": "a Ground Truth quota; the cause is SageMaker's message",
    "SageMaker.AccessDeniedException": "the stack's GroundTruthRoleArn must be allowed to read the images",
}


def _message_of(document: Any) -> str | None:
    """A Lambda error document's message (with its type when the message does not start with it)."""
    if not isinstance(document, dict) or "errorMessage" not in document:
        return None
    message = " ".join(str(document["errorMessage"]).split())
    kind = str(document.get("errorType") or "")
    return message if not kind or message.startswith(kind) else f"{kind}: {message}"


def cause_text(cause: str | None, error: str | None = None) -> str:
    """The cause as one short line: a Lambda error document gives its message (not its stack trace),
    `States.X: <document>` keeps its prefix, anything else its first line."""
    if not cause:
        return ""
    text = cause.strip()
    prefix, document = "", text
    match = re.match(r"^([A-Za-z.]+): (\{.*\})$", text, re.DOTALL)
    if match:
        prefix, document = match[1] + ": ", match[2]
    try:
        message = _message_of(json.loads(document))
    except ValueError:
        message = None
    if message is not None:
        if error and prefix == "" and message.startswith(error + ": "):
            message = message.removeprefix(error + ": ")  # "InvalidInput: InvalidInput: ..." once
        text = prefix + message
    else:
        text = " ".join(text.splitlines()[0].split()) if text else ""
        if "Traceback (most recent call last)" in cause:
            last = [line.strip() for line in cause.strip().splitlines() if line.strip()][-1]
            text = last
    if len(text) > MAX_CAUSE_CHARS:
        text = text[: MAX_CAUSE_CHARS - 3].rstrip() + "..."
    return text


def one_line(error: str | None, cause: str | None) -> str:
    """`<error>: <cause> (what to do: ...)`, one line."""
    name = error or "Failed"
    text = cause_text(cause, name)
    line = f"{name}: {text}" if text else name
    fix = FIXES.get(name)
    return f"{line} (what to do: {fix})" if fix else line
