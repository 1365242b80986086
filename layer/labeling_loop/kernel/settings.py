"""The functions' settings: their environment variables (set by template.yaml), typed, read once at
cold start. A missing or malformed variable fails the function's first invocation with the
variable's name, instead of hiding behind a default.

Each handler loads the model of what it reads at module level, e.g.
`SETTINGS = load(RunStateSettings)`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Json,
    ValidationError,
)

from labeling_loop.kernel.run_config import ALLOWED_PROJECT_ARN, SECRET_ARN
from labeling_loop.review.labelstudio.endpoint import endpoint


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


def _comma_list(value: Any) -> Any:
    # A CommaDelimitedList parameter, joined with commas by the template; empty items dropped.
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


def _each_matches(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(values: list[str]) -> list[str]:
        for value in values:
            if not pattern.fullmatch(value):
                raise ValueError(f"{value!r} is not {what}")
        return values

    return AfterValidator(check)


def _secret_arn(value: str) -> str:
    if value and not SECRET_ARN.fullmatch(value):
        raise ValueError("must be a Secrets Manager secret ARN")
    return value


class LabelStudioSettings(FunctionSettings):
    """Where the Label Studio backend is and which secret holds its token. Stack parameters only,
    never the execution input: no run can send the stack's token anywhere else (docs/security.md).
    Empty when the stack does not use Label Studio."""

    label_studio_url: str = Field(alias="LABEL_STUDIO_URL")
    label_studio_http_host: str = Field(alias="LABEL_STUDIO_HTTP_HOST")
    label_studio_token_secret_arn: Annotated[str, AfterValidator(_secret_arn)] = Field(
        alias="LABEL_STUDIO_TOKEN_SECRET_ARN"
    )

    def label_studio_endpoint(self) -> str:
        """The URL the token may be sent to (review.labelstudio.endpoint); ValueError naming the
        stack parameter when it is unset or breaks a rule."""
        if not self.label_studio_url:
            raise ValueError("the stack sets no LabelStudioUrl")
        if not self.label_studio_token_secret_arn:
            raise ValueError("the stack sets no LabelStudioTokenSecretArn")
        try:
            return endpoint(self.label_studio_url, self.label_studio_http_host)
        except ValueError as error:
            raise ValueError(f"the stack's LabelStudioUrl {error}") from None


class LabelStudioReviewSettings(RegionSettings, LabelStudioSettings):
    """The Label Studio backend's function: its region and the stack's Label Studio."""


WorkteamType = Literal["private-crowd", "vendor-crowd", "public-crowd"]


class StackSettings(RegionSettings, LabelStudioSettings):
    """What the stack grants a run (ValidateInput): its defaults, its buckets, the models and
    workforces runs may use, the most inference units a run may start, its Label Studio."""

    run_defaults: Json[dict[str, Any]] = Field(alias="RUN_DEFAULTS")
    images_bucket: str = Field(alias="IMAGES_BUCKET", min_length=3)
    output_bucket: str = Field(alias="OUTPUT_BUCKET", min_length=3)
    # The same ARN patterns the roles grant Start/Detect on (template.yaml: AllowedProjectArns).
    allowed_project_arns: Annotated[
        list[str],
        BeforeValidator(_comma_list),
        _each_matches(
            ALLOWED_PROJECT_ARN,
            "a project ARN pattern (arn:aws:rekognition:<region>:<account>:project/<name>/*)",
        ),
    ] = Field(alias="ALLOWED_PROJECT_ARNS")
    inference_units_limit: int = Field(alias="INFERENCE_UNITS_LIMIT", ge=1, le=100)
    workteam_types: Annotated[list[WorkteamType], BeforeValidator(_comma_list)] = Field(
        alias="WORKTEAM_TYPES", min_length=1
    )


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
