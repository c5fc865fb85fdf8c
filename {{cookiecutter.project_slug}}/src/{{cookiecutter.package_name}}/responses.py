"""HTTP API (payload format 2.0) responses with JSON bodies."""

import json
from typing import Any


def json_response(status: int, body: Any) -> dict:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, default=str),
    }


def error(status: int, message: str) -> dict:
    return json_response(status, {"error": message})
