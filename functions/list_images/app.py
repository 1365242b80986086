"""Lists the images under the prefix and claims them (incremental runs): inventory.jsonl."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.inference.listing import ListingSettings, list_images
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import LIST_IMAGES, parse
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
    config = parse(LIST_IMAGES, event).config
    result = list_images(s3, dynamodb, SETTINGS.run_state_table, ListingSettings.from_config(config))
    logger.info("images listed", extra=result.to_dict())
    return result.to_dict()
