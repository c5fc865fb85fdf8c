"""The floor: the least a Lambda handler can do to serve the same read and write.

One MongoClient built once per execution environment, at import, from the same MONGODB_URI
the rendered handler gets (same server, options, pool size) with the username and password
passed in directly (BENCH_FLOOR_USERNAME / BENCH_FLOOR_PASSWORD; no Secrets Manager). Per
invocation: the same find_one by ObjectId (GET) or insert_one (POST) on the same `items`
collection, and a hand-built HTTP API response. No routing, logging, validation, timeouts or
error handling: whatever time the rendered handler takes beyond this, under the same runtime
path, is its own overhead.
"""

import json
import os

from bson import ObjectId
from pymongo import MongoClient

_client = MongoClient(
    os.environ["MONGODB_URI"],
    username=os.environ.get("BENCH_FLOOR_USERNAME") or None,
    password=os.environ.get("BENCH_FLOOR_PASSWORD") or None,
)
_items = _client[os.environ["MONGODB_DATABASE"]]["items"]


def handler(event, context):
    if event["requestContext"]["http"]["method"] == "POST":
        inserted = _items.insert_one(json.loads(event["body"])).inserted_id
        return {"statusCode": 201, "body": json.dumps({"id": str(inserted)})}
    document = _items.find_one({"_id": ObjectId(event["pathParameters"]["id"])})
    if document is None:
        return {"statusCode": 404, "body": "{}"}
    document["id"] = str(document.pop("_id"))
    return {"statusCode": 200, "body": json.dumps(document, default=str)}
