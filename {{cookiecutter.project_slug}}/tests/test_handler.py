"""The handler in this process, against a real MongoDB wire-protocol server."""

import base64
import dataclasses
import gzip
import json

import dns.resolver
import pytest

from tests.conftest import LambdaContext, package_module
from tests.support.dns_server import LocalDNS

MARGIN_MS = package_module("config").DEADLINE_MARGIN_MS


def call(app, event, context):
    response = app.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def test_post_then_get_returns_the_posted_fields_and_the_id(app, event, lambda_context):
    status, created = call(app, event("post-item"), lambda_context())
    assert status == 201
    posted = json.loads(event("post-item")["body"])

    get = event("get-item", rawPath=f"/items/{created['id']}")
    status, item = call(app, get, lambda_context())

    assert status == 200
    assert item == {**posted, "id": created["id"]}


def test_base64_encoded_body_is_accepted(app, event, lambda_context):
    body = base64.b64encode(b'{"name": "encoded"}').decode()
    encoded = event("post-item", body=body, isBase64Encoded=True)
    status, created = call(app, encoded, lambda_context())
    assert status == 201
    assert len(created["id"]) == 24


@pytest.mark.parametrize("body", ["not base64!", base64.b64encode(b"\xff\xfe").decode()])
def test_base64_body_that_does_not_decode_is_400(app, event, lambda_context, body):
    encoded = event("post-item", body=body, isBase64Encoded=True)
    status, error = call(app, encoded, lambda_context())
    assert (status, error) == (400, {"error": "the body must be a JSON object"})


@pytest.mark.parametrize("item_id", ["6745f0a1c2d3e4f5a6b7c8d9", "not-an-object-id"])
def test_unknown_item_is_404(app, event, lambda_context, item_id):
    status, body = call(app, event("get-item", rawPath=f"/items/{item_id}"), lambda_context())
    assert (status, body) == (404, {"error": f"item {item_id} not found"})


def test_health_pings_the_database(app, event, lambda_context):
    assert call(app, event("health"), lambda_context()) == (200, {"status": "ok"})


def test_malformed_json_is_400(app, event, lambda_context):
    status, body = call(app, event("malformed-body"), lambda_context())
    assert (status, body) == (400, {"error": "the body must be a JSON object"})


@pytest.mark.parametrize("body", ['["a", "list"]', '"text"', "42", "", None])
def test_body_that_is_not_an_object_is_400(app, event, lambda_context, body):
    status, error = call(app, event("post-item", body=body), lambda_context())
    assert (status, error) == (400, {"error": "the body must be a JSON object"})


def test_client_chosen_id_is_400(app, event, lambda_context):
    status, error = call(app, event("post-item", body='{"_id": 1}'), lambda_context())
    assert status == 400
    assert "id is assigned by the server" in error["error"]


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nowhere"), ("DELETE", "/items/1"), ("GET", "/items")]
)
def test_unknown_route_is_404(app, event, lambda_context, method, path):
    unknown = event("unknown-route", rawPath=path)
    unknown["requestContext"]["http"]["method"] = method
    status, body = call(app, unknown, lambda_context())
    assert (status, body) == (404, {"error": f"no route for {method} {path}"})


def test_no_time_left_is_503_without_touching_the_database(app, event, lambda_context):
    status, body = call(app, event("health"), lambda_context(timeout_ms=MARGIN_MS - 1))
    assert status == 503
    assert "unavailable" in body["error"]


def test_unknown_route_is_404_even_with_no_time_left(app, event, lambda_context):
    status, body = call(app, event("unknown-route"), lambda_context(timeout_ms=0))
    path = event("unknown-route")["rawPath"]
    assert (status, body) == (404, {"error": f"no route for GET {path}"})


class FailingClock(LambdaContext):
    """A Lambda context whose remaining-time call fails: an error inside the middleware."""

    def get_remaining_time_in_millis(self) -> int:
        raise RuntimeError("injected failure")


def fail_in_the_route(monkeypatch):
    routes = package_module("routes")

    def failing_body_parser(request):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(routes, "_json_object", failing_body_parser)
    return LambdaContext(3000)


@pytest.mark.parametrize(
    "make_context",
    [fail_in_the_route, lambda monkeypatch: FailingClock(3000)],
    ids=["in the route", "in the middleware"],
)
def test_an_unexpected_error_is_500_with_its_traceback_logged(
    app, event, monkeypatch, function_logs, make_context
):
    context = make_context(monkeypatch)
    status, body = call(app, event("post-item"), context)
    assert (status, body) == (500, {"error": "internal error"})
    (record,) = function_logs.records("Unexpected error")
    assert record["level"] == "ERROR"
    assert "RuntimeError: injected failure" in record["exception"]
    assert record["function_request_id"] == context.aws_request_id


def test_log_records_carry_the_requests_correlation_id(app, event, lambda_context, function_logs):
    for request_id in ("first-request", "second-request"):
        late = event("health")
        late["requestContext"]["requestId"] = request_id  # API Gateway's id of the HTTP request
        assert call(app, late, lambda_context(timeout_ms=MARGIN_MS - 1))[0] == 503
    records = function_logs.records("Database unavailable")
    assert [record["correlation_id"] for record in records] == ["first-request", "second-request"]


def test_logs_are_json_with_the_request_id_and_no_secret(
    app, mongo, event, lambda_context, function_logs
):
    context = lambda_context(timeout_ms=MARGIN_MS - 1)  # a request that logs (a 503 warning)
    call(app, event("health"), context)
    call(app, event("unknown-route"), lambda_context())
    records = function_logs.records()
    assert records and len(records) == len(function_logs.text.splitlines())
    assert [record["function_request_id"] for record in records] == [context.aws_request_id]
    if mongo.password:
        assert mongo.password not in function_logs.text


def test_one_client_serves_every_invocation(app, event, lambda_context):
    database = package_module("database")
    call(app, event("health"), lambda_context())
    first = database._client
    for _ in range(5):
        call(app, event("health"), lambda_context())
    assert first is not None
    assert database._client is first


def test_no_route_compresses_so_the_request_headers_stay_unread(app, event, lambda_context):
    """No route asks for compression, so a request that accepts gzip gets its JSON as it is, and
    the resolver never case-folds the request's headers to find out (routes.py,
    CompressedOnlyWhenAsked): Powertools' own builder reads them on every request."""
    headers = {"Accept-Encoding": "gzip, deflate, br", "X-Forwarded-For": "203.0.113.10, 10.0.0.1"}
    response = app.handler(event("health", headers=headers), lambda_context())
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"status": "ok"})
    assert response["isBase64Encoded"] is False
    assert "Content-Encoding" not in response["headers"]
    assert "resolved_headers_field" not in vars(package_module("routes").app.current_event)


@pytest.mark.parametrize(
    ("accepted", "gzipped"), [("gzip, deflate", True), ("br", False), (None, False)]
)
def test_a_route_that_asks_for_compression_still_gets_it(event, lambda_context, accepted, gzipped):
    resolver = package_module("routes").HttpApiResolver()
    text = "compressible " * 200

    @resolver.get("/text", compress=True)
    def compressed_text():
        return {"text": text}

    headers = {} if accepted is None else {"accept-encoding": accepted}
    response = resolver.resolve(event("health", rawPath="/text", headers=headers), lambda_context())
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is gzipped
    assert (response["headers"].get("Content-Encoding") == "gzip") is gzipped
    body = gzip.decompress(base64.b64decode(response["body"])) if gzipped else response["body"]
    assert json.loads(body) == {"text": text}


LB_HOST = "c0-pl-0-lb.abcde.mongodb.net"


@pytest.fixture
def lb_host_with_srv_max_hosts(app, monkeypatch):
    """The function on an -lb host whose DNS TXT record sets loadBalanced=true (a loopback DNS
    server answers for it), with srvMaxHosts=3 in MONGODB_URI as sharded clusters had it; start-up
    cannot see the conflict, only the first use of a fresh client can."""
    server = LocalDNS(
        {
            (f"_mongodb._tcp.{LB_HOST}", "SRV"): ["0 0 27017 lb.abcde.mongodb.net."],
            (LB_HOST, "TXT"): ['"loadBalanced=true"'],
        }
    ).start()
    monkeypatch.setattr(dns.resolver, "default_resolver", server.resolver())
    uri = f"mongodb+srv://{LB_HOST}/?authSource=admin&maxPoolSize=1&srvMaxHosts=3"
    monkeypatch.setattr(app, "settings", dataclasses.replace(app.settings, mongodb_uri=uri))
    database = package_module("database")
    monkeypatch.setattr(database, "_client", None)
    yield server
    if database._client is not None:
        database._client.close()
    server.stop()


def test_a_uri_its_hosts_txt_record_contradicts_fails_the_invocation_naming_it(
    app, event, lambda_context, function_logs, lb_host_with_srv_max_hosts
):
    """Not a 503, which would read as an outage: the invocation fails as start-up does on a bad
    setting (Lambda counts it in Errors), and the log says what is wrong, every time."""
    config = package_module("config")
    for _ in range(2):
        with pytest.raises(config.ConfigurationError) as raised:
            app.handler(event("health"), lambda_context())
        message = str(raised.value)
        assert message.startswith("MONGODB_URI is not a connection string pymongo accepts")
        assert "loadBalanced with srvMaxHosts" in message
    srv, txt = (f"_mongodb._tcp.{LB_HOST}.", "SRV"), (f"{LB_HOST}.", "TXT")
    assert lb_host_with_srv_max_hosts.queries == [srv, txt, srv, txt]  # looked up, nothing else
    records = function_logs.records("The function is misconfigured")
    assert [record["level"] for record in records] == ["ERROR", "ERROR"]
    assert all(record["error"] == message for record in records)
    assert function_logs.records("Database unavailable") == []
