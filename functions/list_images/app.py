"""Lists the images under the prefix and claims them (incremental runs): inventory.jsonl."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.inference.listing import list_images
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.run_config import from_state
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.kernel.settings import RunStateSettings, load

logger = Logger()
tracer = Tracer()
SETTINGS = load(RunStateSettings)
s3 = client("s3")
dynamodb = client("dynamodb")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    result = list_images(
        s3,
        dynamodb,
        SETTINGS.run_state_table,
        images=S3Uri.parse(config.images),
        layout=config.layout(),
        output_prefix=S3Uri.parse(config.output),
        run_id=config.runId,
        incremental=config.incremental,
        # A claim outlives the longest run this configuration allows, then lapses by itself.
        claim_seconds=config.longest_run_seconds,
        max_images=config.maxImagesPerRun,
    )
    logger.info("images listed", extra=result.to_dict())
    return result.to_dict()
