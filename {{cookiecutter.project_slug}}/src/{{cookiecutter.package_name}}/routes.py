"""The routes of the HTTP API and what each does with the `items` collection.

POST /items          a JSON object  -> 201 {"id": ...}, or 413 if its GET could not be returned;
                     with an Idempotency-Key header, the same key and body again -> 201 with the
                     same id, another body -> 422 (idempotency.py)
GET  /items/<id>                    -> 200 the posted fields plus id, or 404
GET  /health         database ping  -> 200 {"status": "ok"} (sent again after a network error)

Powertools' resolver matches the request to a route; within_the_deadline, the one middleware,
runs every route under the invocation's deadline; the handlers at the end turn errors into
responses: 400 for a bad request (a body MongoDB would not store included: documents.py checks it
before sending, and the server's own refusals are 400s too), 413 for an item too large for Lambda
to return (responses.py), 503 when the database is unavailable or too slow, 500 for anything
unexpected, 404 for a request no route matches. A 503 to a POST whose insert may have reached the
server says that its outcome is unknown and gives the item's id: GET /items/<id> tells whether it
was stored, and the POST sent again with the same Idempotency-Key stores it at most once. A setting
that turns out wrong only when used (MONGODB_URI with what DNS adds) fails the invocation itself,
as a wrong setting fails start-up: Lambda counts it in Errors, which the function-errors alarm
watches, rather than as a 503 that looks like an outage.
"""

import base64
import binascii
import json
from functools import partial

import pymongo
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from bson import ObjectId
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from . import database, documents, idempotency, responses
from .config import DEADLINE_MARGIN_MS, ConfigurationError, Settings
from .logs import logger
from .observability import record_failure


class CompressedOnlyWhenAsked(ResponseBuilder):
    """Powertools' response builder, reading the request headers only for a response that may be
    compressed. Powertools' own reads the Accept-Encoding header of every request before it asks
    whether the route or the response wants compression (aws_lambda_powertools/event_handler/
    api_gateway.py, ResponseBuilder._has_compression_enabled), and reading it case-folds every
    request header into two dicts: about 10 µs of CPU on each request, for a compression no route
    here asks for. This builder asks the route and the response first; what it answers is the same:
    gzip when the route or the response asks for it and the request accepts it."""

    @staticmethod
    def _has_compression_enabled(
        route_compression: bool, response_compression: bool | None, event: APIGatewayProxyEventV2
    ) -> bool:
        if not route_compression and not response_compression:
            return False
        return ResponseBuilder._has_compression_enabled(
            route_compression, response_compression, event
        )


class HttpApiResolver(APIGatewayHttpResolver):
    """Powertools' resolver of HTTP API events, with CompressedOnlyWhenAsked as its response
    builder (chosen as Powertools' own resolvers choose theirs, in __init__)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._response_builder_class = CompressedOnlyWhenAsked


app = HttpApiResolver(serializer=responses.serialize)


class BadRequest(ValueError):
    """The request cannot be served as sent (400)."""


class OutcomeUnknown(database.Unavailable):
    """An insert failed after it may have reached the server: the item may be stored (503). The
    message says how to find out, and how to retry without storing the item twice."""

    def __init__(self, item_id: ObjectId, *, keyed: bool) -> None:
        if keyed:
            retry = f", and sending it again with the same {idempotency.HEADER} header is safe"
        else:
            retry = (
                " (a 404 at once can precede a write still under way), and only a request with "
                f"an {idempotency.HEADER} header is safe to send again"
            )
        super().__init__(
            "the database is unavailable or too slow: it did not confirm the write, so item "
            f"{item_id} may or may not be stored; GET /items/{item_id} tells whether it was{retry}"
        )
        self.item_id = item_id


def within_the_deadline(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """Run the route under pymongo.timeout, so its database work ends DEADLINE_MARGIN_MS before
    the invocation's deadline; with no time left it is a 503 before the database is touched.

    Powertools runs global middlewares for a request no route matches too, on a stand-in route of
    its own that answers through not_found below: that needs neither time nor the database."""
    if _no_route_matched(app):
        return next_middleware(app)
    budget_ms = app.lambda_context.get_remaining_time_in_millis() - DEADLINE_MARGIN_MS
    if budget_ms <= 0:
        raise database.Unavailable("no time left before the invocation deadline")
    with pymongo.timeout(budget_ms / 1000):
        return next_middleware(app)


app.use(middlewares=[within_the_deadline])


@app.post("/items")
def create_item():
    settings = _settings()
    text = _body_text(app.current_event)
    document = _json_object(text)
    try:
        documents.check(document, max_depth=settings.max_document_depth)
    except documents.Unstorable as error:
        raise BadRequest(str(error)) from error
    responses.check_returnable(document, posted_characters=len(text))
    key = app.current_event.headers.get(idempotency.HEADER)
    if key is not None:
        try:
            document["_id"] = idempotency.document_id(idempotency.check(key))
        except idempotency.InvalidKey as error:
            raise BadRequest(str(error)) from error
    try:
        database.run(settings, partial(_insert, document))
    except database.Unavailable as error:
        # insert_one gives the document its _id before it sends anything
        # (pymongo/synchronous/collection.py), so the id of what may be stored is known here
        if error.nothing_sent or "_id" not in document:
            raise
        raise OutcomeUnknown(document["_id"], keyed=key is not None) from error.__cause__
    return {"id": str(document["_id"])}, 201


def _insert(document: dict, items: Collection) -> None:
    """Insert document. If its _id is taken by this very document, an earlier attempt of this
    request stored it (the same Idempotency-Key, or pymongo's own retry after a lost reply) and
    there is nothing more to do; taken by another body, the key was reused (KeyReused). A
    duplicate in another unique index stays the document's fault (database.DocumentRefused)."""
    try:
        items.insert_one(document)
    except DuplicateKeyError:
        stored = items.find_one({"_id": document["_id"]})
        if stored is None:
            raise
        if not idempotency.same_document(stored, document):
            raise idempotency.KeyReused(document["_id"]) from None


@app.get("/items/<item_id>")
def get_item(item_id: str):
    if not ObjectId.is_valid(item_id):
        return _error(404, f"item {item_id} not found")
    document = database.run(_settings(), lambda items: items.find_one({"_id": ObjectId(item_id)}))
    if document is None:
        return _error(404, f"item {item_id} not found")
    document["id"] = str(document.pop("_id"))
    return document


@app.get("/health")
def health():
    database.run(_settings(), database.ping)
    return {"status": "ok"}


@app.exception_handler(BadRequest)
def bad_request(error: BadRequest) -> Response:
    return _error(400, str(error))


@app.exception_handler(idempotency.KeyReused)
def key_reused(error: idempotency.KeyReused) -> Response:
    return _error(422, str(error))


@app.exception_handler(responses.TooLargeToReturn)
def too_large_to_return(error: responses.TooLargeToReturn) -> Response:
    return _error(413, str(error))


@app.exception_handler(database.DocumentRefused)
def document_refused(error: database.DocumentRefused) -> Response:
    logger.info("The database refused the document", extra={"code": error.code})
    return _error(400, str(error))


@app.exception_handler(database.Unavailable)
def database_unavailable(error: database.Unavailable) -> Response:
    name = type(error.__cause__ or error).__name__
    unknown = {}
    if isinstance(error, OutcomeUnknown):
        unknown = {"outcome": "unknown", "id": str(error.item_id)}
    logger.warning("Database unavailable", extra={"error": name, "cause": error.cause, **unknown})
    record_failure(error.__cause__ or error)
    if unknown:
        body = {"error": str(error), **unknown}
        return Response(503, content_types.APPLICATION_JSON, body)
    return _error(503, "the database is unavailable or too slow; try again")


@app.exception_handler(ConfigurationError)
def configuration_error(error: ConfigurationError) -> Response:
    logger.error("The function is misconfigured", extra={"error": str(error)})
    raise error


@app.exception_handler(Exception)
def unexpected_error(error: Exception) -> Response:
    logger.exception("Unexpected error", exc_info=error)
    return _error(500, "internal error")


@app.not_found
def no_route(error: NotFoundError) -> Response:
    request = app.current_event
    return _error(404, f"no route for {request.http_method} {request.path}")


def _settings() -> Settings:
    """The function's settings, which the handler puts in the resolver's context per request."""
    return app.context["settings"]


def _no_route_matched(app: APIGatewayHttpResolver) -> bool:
    # The route Powertools chose (its own middlewares read it the same way); its stand-in for an
    # unmatched request is a function of Powertools' own module, every route above is ours.
    return app.context["_route"].func.__module__ == APIGatewayHttpResolver.__module__


def _error(status: int, message: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"error": message})


def _body_text(request: APIGatewayProxyEventV2) -> str:
    body = request.body or ""
    if not request.is_base64_encoded:
        return body
    try:
        # validate=True: Powertools' decoded_body would drop characters that are not base64
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (ValueError, binascii.Error) as error:
        raise BadRequest("the body must be a JSON object") from error


def _json_object(text: str) -> dict:
    try:
        # NaN and Infinity are not JSON (RFC 8259); documents.check() refuses them by name
        document = json.loads(text, parse_constant=documents.parse_constant)
    except ValueError as error:
        raise BadRequest("the body must be a JSON object") from error
    except RecursionError as error:
        message = "the body is nested too deeply to parse, far deeper than MongoDB stores"
        raise BadRequest(message) from error
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object")
    if "_id" in document or "id" in document:
        raise BadRequest("id is assigned by the server; leave id and _id out of the body")
    return document
