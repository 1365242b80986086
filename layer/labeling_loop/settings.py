"""Settings of the functions, read from their environment once, typed. A missing required setting
fails loudly at the first use instead of hiding behind a default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    run_state_table: str
    region: str
    threads_per_batch: int
    verification_pre_annotation_arn: str
    verification_consolidation_arn: str
    label_studio_s3_endpoint: str | None


@lru_cache(maxsize=1)
def settings() -> Settings:
    env = os.environ
    return Settings(
        run_state_table=env.get("RUN_STATE_TABLE", ""),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "",
        threads_per_batch=int(env.get("THREADS_PER_BATCH", "4")),
        verification_pre_annotation_arn=env.get("VERIFICATION_PRE_ANNOTATION_FUNCTION_ARN", ""),
        verification_consolidation_arn=env.get("VERIFICATION_CONSOLIDATION_FUNCTION_ARN", ""),
        label_studio_s3_endpoint=env.get("LABEL_STUDIO_S3_ENDPOINT") or None,
    )


def required(value: str, name: str) -> str:
    if not value:
        raise RuntimeError(f"environment variable {name} is not set; the stack sets it")
    return value
