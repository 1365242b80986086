"""The functions' settings: their environment variables (set by template.yaml), typed, read once at
cold start. A missing or malformed variable fails the function's first invocation with the
variable's name, instead of hiding behind a default.

Each handler loads the model of what it reads at module level, e.g.
`SETTINGS = load(RunStateSettings)`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, Json, ValidationError


class SettingsError(RuntimeError):
    """The function's environment lacks a variable the stack sets (a deployment problem)."""


class FunctionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=False)


class RegionSettings(FunctionSettings):
    # Set by the Lambda runtime; AWS_DEFAULT_REGION for scripts and tests.
    region: str = Field(validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"), min_length=1)


class RunStateSettings(FunctionSettings):
    """Model leases and image claims."""

    run_state_table: str = Field(alias="RUN_STATE_TABLE", min_length=1)


class StackSettings(RegionSettings):
    """What the stack grants a run (ValidateInput): its defaults and its buckets."""

    run_defaults: Json[dict[str, Any]] = Field(alias="RUN_DEFAULTS")
    images_bucket: str = Field(alias="IMAGES_BUCKET", min_length=3)
    output_bucket: str = Field(alias="OUTPUT_BUCKET", min_length=3)


class PlanReviewSettings(RegionSettings):
    """The label-verification task's own Lambdas, which Ground Truth calls for image-level labels."""

    verification_pre_annotation_arn: str = Field(
        alias="VERIFICATION_PRE_ANNOTATION_FUNCTION_ARN", min_length=1
    )
    verification_consolidation_arn: str = Field(alias="VERIFICATION_CONSOLIDATION_FUNCTION_ARN", min_length=1)


class NotifySettings(RegionSettings):
    """The stack's SNS topic; empty when the stack was deployed without NotificationEmail."""

    topic_arn: str = Field(alias="NOTIFICATION_TOPIC_ARN")


S = TypeVar("S", bound=FunctionSettings)


def load(model: type[S], environ: Mapping[str, str] | None = None) -> S:
    """The settings `model` reads, from the environment; SettingsError names what is missing."""
    environ = os.environ if environ is None else environ
    try:
        return model.model_validate(dict(environ))
    except ValidationError as error:
        problems = "; ".join(
            f"environment variable {'.'.join(str(p) for p in item['loc'])}: "
            + ("is not set; the stack sets it" if item["type"] == "missing" else item["msg"])
            for item in error.errors()
        )
        raise SettingsError(problems) from None
