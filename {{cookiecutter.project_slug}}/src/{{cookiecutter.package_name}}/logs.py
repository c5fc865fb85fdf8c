"""The function's structured JSON logger (Powertools); the service name comes from
POWERTOOLS_SERVICE_NAME and each record carries the request id inside the handler."""

from aws_lambda_powertools import Logger

logger = Logger()
