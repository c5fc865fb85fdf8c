"""What the function answers, and whether Lambda can deliver it: the one JSON serializer of the
response bodies, and check_returnable(), which refuses to store an item whose GET could not be
answered.

Lambda returns at most MAX_RESPONSE_BYTES from a synchronous invocation, counted on what the
runtime client posts: the handler's whole dict, JSON-encoded by the runtime, the body string
(JSON already) encoded a second time. A longer response is an error (Function.ResponseSizeTooLarge)
that API Gateway turns into a 5xx, for that item on every GET. The body is serialized compactly and
with non-ASCII text as UTF-8: json.dumps' defaults add a space after every comma and colon and write
each non-ASCII character as a \\uXXXX escape (6 bytes, 12 for an emoji), whose backslash the runtime
escapes again.

Pure Python: no driver, no settings; routes.py calls it.
"""

import json
import os
import re
from functools import partial

# Lambda quotas, "Invocation payload (request and response)": 6 MB each for synchronous
# invocations (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). Exactly:
# 6 MiB and 100 bytes, the most the Runtime API accepts as a response (MaxPayloadSize in
# aws/aws-lambda-runtime-interface-emulator internal/lambda/interop/model.go; rapidcore/server.go
# answers a longer one with ErrorResponseTooLarge), the figure Lambda's own error message names.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100

serialize = partial(json.dumps, separators=(",", ":"), ensure_ascii=False, default=str)

# An ObjectId as GET writes it: 24 hexadecimal digits.
_ID_PLACEHOLDER = "0" * 24


def _runtime_escapes_non_ascii() -> bool:
    """Whether the runtime client writes non-ASCII characters of the response as \\u escapes.
    awslambdaric (lambda_runtime_marshaller.py) leaves them as UTF-8 on Lambda's managed
    python3.12 and later runtimes, which it recognises by AWS_EXECUTION_ENV, and escapes them
    anywhere else (a container image, a custom runtime); Powertools sizes its ALB responses by the
    same rule (aws_lambda_powertools/event_handler/api_gateway.py)."""
    runtime = re.fullmatch(r"AWS_Lambda_python3\.(\d+)", os.environ.get("AWS_EXECUTION_ENV", ""))
    return runtime is None or int(runtime[1]) < 12


RUNTIME_ESCAPES_NON_ASCII = _runtime_escapes_non_ascii()


class TooLargeToReturn(ValueError):
    """The item could be stored, but Lambda could not return it; the message gives both sizes."""


def delivered_bytes(response: dict, *, escape_non_ascii: bool = RUNTIME_ESCAPES_NON_ASCII) -> int:
    """The size of the handler's response as the runtime client sends it to Lambda: json.dumps'
    default separators are simplejson's, which awslambdaric uses."""
    return len(json.dumps(response, ensure_ascii=escape_non_ascii).encode("utf-8"))


def item_response(item: dict) -> dict:
    """What GET /items/<id> returns for this item (its id included), as Powertools' resolver
    builds it for an HTTP API: tests/test_responses.py compares it with the real one."""
    return {
        "statusCode": 200,
        "body": serialize(item),
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json"},
        "cookies": [],
    }


def _bytes_per_posted_character(escape_non_ascii: bool) -> float:
    """The most one character of a posted body can weigh in the GET response, whatever it is.

    Parsing and serializing again never lengthens text: a string character the answer escapes
    (quote, backslash, control character) had to be escaped in the body too, and an escape in the
    body (\\u00e9) may become one character. A number can grow: Python writes a float below 1e16
    in full, so the 4 characters of 1e15 come back as the 18 of 1000000000000000.0, 4.5 bytes a
    character, the most any JSON token grows. The runtime then encodes the body string again: a
    quote or backslash becomes 2 bytes, a non-ASCII character its UTF-8 (at most 4 bytes) or, where
    the runtime escapes it, a 6-byte \\uXXXX, 12 for a character outside the BMP (a surrogate pair).
    """
    return 12.0 if escape_non_ascii else 4.5


def _fixed_bytes(escape_non_ascii: bool) -> int:
    """The response's fixed part: status, headers and an empty item's body with its id."""
    empty = item_response({"id": _ID_PLACEHOLDER})
    return delivered_bytes(empty, escape_non_ascii=escape_non_ascii)


_FIXED_BYTES = {escape: _fixed_bytes(escape) for escape in (False, True)}


def most_bytes(
    posted_characters: int, *, escape_non_ascii: bool = RUNTIME_ESCAPES_NON_ASCII
) -> float:
    """The most a GET response can weigh for a body of this many characters. Each character is
    counted at the highest weight, so the braces of the body and the comma before the id are
    covered with room to spare."""
    weight = _bytes_per_posted_character(escape_non_ascii)
    return posted_characters * weight + _FIXED_BYTES[escape_non_ascii]


def check_returnable(document: dict, posted_characters: int) -> None:
    """Raise TooLargeToReturn if GET could not return document (a parsed body, before it is
    stored) within Lambda's response limit. posted_characters is the length of the body's text;
    a body of up to about 1.4 million characters (524,000 where the runtime escapes non-ASCII)
    cannot come near the limit and is not serialized to be counted."""
    if most_bytes(posted_characters) <= MAX_RESPONSE_BYTES:
        return
    size = delivered_bytes(item_response({**document, "id": _ID_PLACEHOLDER}))
    if size > MAX_RESPONSE_BYTES:
        raise TooLargeToReturn(
            f"the item would be {size} bytes as the answer to its GET, more than the "
            f"{MAX_RESPONSE_BYTES} bytes a Lambda function can return (its 6 MB response limit); "
            "nothing was stored"
        )
