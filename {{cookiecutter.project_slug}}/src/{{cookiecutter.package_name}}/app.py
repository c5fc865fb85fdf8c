"""The Lambda entry point (Handler: <package>.app.handler).

Module import is the environment's start-up: settings are read and checked once here (a missing
AWS_REGION stops the function with an error naming it); the MongoClient is built on first use.
"""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from . import config, responses, routes
from .logs import logger

settings = config.load()
logger.info("Function environment initialised", extra={"pid": os.getpid()})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: LambdaContext) -> dict:
    try:
        return routes.handle(event, context.get_remaining_time_in_millis(), settings)
    except Exception:
        logger.exception("Unexpected error")
        return responses.error(500, "internal error")
