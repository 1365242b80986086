"""The failure path: give back what the run holds, so a failed run costs nothing more and loses
nothing. Idempotent: a retried cleanup does no harm."""

from __future__ import annotations

from typing import Any

from labeling_loop.inference import claims, model_control
from labeling_loop.run_config import RunConfig


def clean_up(
    rekognition: Any, dynamodb: Any, s3: Any, table: str, config: RunConfig, error: dict[str, Any] | None
) -> dict[str, Any]:
    released = model_control.release(rekognition, dynamodb, table, config)
    released_claims = 0
    if config.incremental:
        released_claims = claims.release_all(dynamodb, table, s3, config.layout(), config.runId)
    name, cause = failure_name(error)
    return {
        "modelStopped": released["stopped"],
        "modelStatus": released["status"],
        "claimsReleased": released_claims,
        "error": name,
        "cause": cause,
    }


def failure_name(error: dict[str, Any] | None) -> tuple[str, str]:
    """The (error, cause) the execution fails with. Step Functions reserves `States.` names, and a
    Fail state may not raise them, so `States.Timeout` becomes `StatesTimeoutError`; the cause
    always starts with the original name, so nothing is lost."""
    error = error or {}
    name = str(error.get("Error") or "RunFailedError")
    cause = str(error.get("Cause") or "")
    if name.startswith("States."):
        return f"States{name.removeprefix('States.')}Error", f"{name}: {cause}"
    return name, cause
