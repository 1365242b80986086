"""Calling a function's handler as Lambda would: its app.py loaded from functions/<folder>/ (the
folders are not packages), a Lambda-like context object, and its event fixtures."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "tests" / "events"


@dataclass
class FakeLambdaContext:
    function_name: str = "labeling-loop-Function-TEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:labeling-loop-Function-TEST"
    aws_request_id: str = "7f1c9a52-3c2e-4e0b-9a51-1f2d3c4b5a69"
    log_group_name: str = "/aws/lambda/labeling-loop"
    log_stream_name: str = "2026/01/01/[$LATEST]abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def load_handler(name: str) -> ModuleType:
    """functions/<name>/app.py as a fresh module, as a new container loads it: its settings and
    boto3 clients are made at import, so call this with the environment (and moto) in place."""
    path = REPO / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"handler_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_event(name: str) -> dict[str, Any]:
    """tests/events/<name>.json (the name with or without its .json)."""
    return dict(json.loads((EVENTS / f"{name.removesuffix('.json')}.json").read_text(encoding="utf-8")))
