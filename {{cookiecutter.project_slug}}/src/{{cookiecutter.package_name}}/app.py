"""The Lambda entry point (Handler: <package>.app.handler).

Module import is the environment's start-up: settings are read and checked once here (a missing
AWS_REGION stops the function with an error naming it, and so does a MONGODB_URI pymongo refuses,
or a missing setting of the auth mode, read by auth.py, or of the metrics namespace, read by
observability.py); the MongoClient is
built on first use, or here when Lambda initialises the environment for provisioned concurrency.
The routes, their deadline and the error responses are in routes.py; every log record of a
request carries its API Gateway request id as correlation_id. Each invocation is traced (X-Ray)
and publishes its metrics when it ends, whatever its outcome: MongoConnectionsCreated, and
ColdStart once per environment (observability.py).
"""

import os

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from . import config, database, routes
from .logs import logger
from .observability import metrics, per_invocation, tracer

settings = config.load()
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "provisioned-concurrency":
    # Lambda initialises provisioned environments ahead of traffic: connect now, so a burst
    # finds the connections open instead of queueing for them (README.md, "Connection budget").
    database.connect_early(settings)
logger.info("Function environment initialised", extra={"pid": os.getpid()})


# No clear_state: the function appends no keys of its own to the logger, and the correlation id
# and the Lambda context's keys are set anew on every invocation, so there is nothing to clear;
# clearing costs about 10 µs of CPU per request. Code that appends a key for one request must
# remove it (logger.remove_keys) or turn clear_state on.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
# capture_response=False: the response body holds the items, which do not belong in traces
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
@per_invocation
def handler(event: dict, context: LambdaContext) -> dict:
    routes.app.append_context(settings=settings)
    return routes.app.resolve(event, context)
