"""The routes of the HTTP API and what each does with the `items` collection.

POST /items        a JSON object  -> 201 {"id": ...}
GET  /items/{id}                  -> 200 the posted fields plus id, or 404
GET  /health       database ping  -> 200 {"status": "ok"}
"""

import base64
import binascii
import json
import re

import pymongo
from bson import ObjectId

from . import database, responses
from .config import DEADLINE_MARGIN_MS, Settings
from .logs import logger

ITEM_PATH = re.compile(r"/items/(?P<item_id>[^/]+)")


class BadRequest(ValueError):
    """The request cannot be served as sent (400)."""


def _json_object(event: dict) -> dict:
    body = event.get("body") or ""
    try:
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body, validate=True).decode("utf-8")
        document = json.loads(body)
    except (ValueError, binascii.Error) as error:
        raise BadRequest("the body must be a JSON object") from error
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object")
    if "_id" in document or "id" in document:
        raise BadRequest("id is assigned by the server; leave id and _id out of the body")
    return document


def create_item(event: dict, settings: Settings) -> dict:
    document = _json_object(event)
    result = database.run(settings, lambda items: items.insert_one(document))
    return responses.json_response(201, {"id": str(result.inserted_id)})


def get_item(event: dict, settings: Settings, item_id: str) -> dict:
    if not ObjectId.is_valid(item_id):
        return responses.error(404, f"item {item_id} not found")
    document = database.run(settings, lambda items: items.find_one({"_id": ObjectId(item_id)}))
    if document is None:
        return responses.error(404, f"item {item_id} not found")
    document["id"] = str(document.pop("_id"))
    return responses.json_response(200, document)


def health(event: dict, settings: Settings) -> dict:
    database.run(settings, lambda items: items.database.command("ping"))
    return responses.json_response(200, {"status": "ok"})


def _route(method: str, path: str):
    if path == "/items" and method == "POST":
        return create_item, ()
    if path == "/health" and method == "GET":
        return health, ()
    match = ITEM_PATH.fullmatch(path)
    if match and method == "GET":
        return get_item, (match["item_id"],)
    return None, ()


def handle(event: dict, remaining_ms: int, settings: Settings) -> dict:
    """Serve one request; database work must end DEADLINE_MARGIN_MS before the deadline."""
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    path = event.get("rawPath", "")
    view, args = _route(method, path)
    if view is None:
        return responses.error(404, f"no route for {method} {path}")
    budget_ms = remaining_ms - DEADLINE_MARGIN_MS
    try:
        if budget_ms <= 0:
            raise database.Unavailable("no time left before the invocation deadline")
        with pymongo.timeout(budget_ms / 1000):
            return view(event, settings, *args)
    except BadRequest as error:
        return responses.error(400, str(error))
    except database.Unavailable as error:
        logger.warning(
            "Database unavailable", extra={"error": type(error.__cause__ or error).__name__}
        )
        return responses.error(503, "the database is unavailable or too slow; try again")
