"""The runtime path alone: a handler that touches no database and returns a fixed response.

Its latency is what the local Runtime API, awslambdaric and the event and response JSON cost
per invocation on this machine, the part of every other pattern's latency that is not the
handler's or the database's doing.
"""

_RESPONSE = {"statusCode": 200, "body": "{}"}


def handler(event, context):
    if event["requestContext"]["http"]["method"] == "POST":
        return {"statusCode": 201, "body": "{}"}
    return _RESPONSE
