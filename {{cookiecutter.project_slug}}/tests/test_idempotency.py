"""POST /items is safe to retry: an Idempotency-Key header names the document's _id, and a 503 whose
insert may have reached the server says that its outcome is unknown and gives the item's id
(routes.py, idempotency.py).

In this process, against the embedded server: the same key and body twice store one item and
answer 201 with one id; a bad key is a 400 naming the header; the key with another body is a 422;
without a key nothing changes. Under the real runtime client, against the local replica set: the
primary applies the insert but its reply comes after the request's deadline, or with a write
concern error, and the caller retries as a client would; without the key a retry stores the order
again, with it the order is stored once, and the 503 before the retry gives the id GET finds.
"""

import dataclasses
import hashlib
import json
import socket
import uuid
from types import SimpleNamespace

import pytest
from bson import ObjectId

from tests.conftest import load_event, local_only, package_module
from tests.support.project import deployed_uri_for
from tests.support.replica_set import start_replica_set
from tests.test_topology import running_function

MARGIN_MS = package_module("config").DEADLINE_MARGIN_MS
HEADER = "idempotency-key"  # as API Gateway hands it on: every header name lowercased
WANTED = "the Idempotency-Key header must be 1 to 255 printable ASCII characters"
TRY_AGAIN = {"error": "the database is unavailable or too slow; try again"}


def key_id(key: str) -> ObjectId:
    """The id a key gives, as the README documents it: the first 12 bytes of its SHA-256. Every
    execution environment must derive the same one, so the test restates it."""
    return ObjectId(hashlib.sha256(key.encode()).digest()[:12])


def new_key() -> str:
    return f"order-{uuid.uuid4()}"


def post_event(body: dict | str, key: str | None = None) -> dict:
    event = load_event("post-item")
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    if key is not None:
        event["headers"] = event["headers"] | {HEADER: key}
    return event


def call(app, event: dict, context) -> tuple[int, dict]:
    response = app.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def stored(app, query: dict) -> list[dict]:
    return list(package_module("database").items(app.settings).find(query))


# ---- in this process, against the embedded server ------------------------------------------------


def test_the_same_key_and_body_twice_answer_201_with_one_id_and_store_one_item(app, lambda_context):
    key, order = new_key(), {"order": str(uuid.uuid4()), "sku": "ABC-123", "quantity": 2}
    first = call(app, post_event(order, key), lambda_context())
    again = call(app, post_event(order, key), lambda_context())

    assert first == again == (201, {"id": str(key_id(key))})
    assert stored(app, {"order": order["order"]}) == [{"_id": key_id(key), **order}]


def test_fields_in_another_order_are_the_same_body(app, lambda_context):
    key, order = new_key(), str(uuid.uuid4())
    first = call(app, post_event({"order": order, "quantity": 2}, key), lambda_context())
    again = call(app, post_event({"quantity": 2, "order": order}, key), lambda_context())

    assert first == again == (201, {"id": str(key_id(key))})
    assert len(stored(app, {"order": order})) == 1


def test_a_key_of_255_printable_characters_with_spaces_is_taken(app, lambda_context):
    printable = "".join(map(chr, range(0x20, 0x7F)))  # space to tilde
    key = (printable * 3)[:255]
    order = str(uuid.uuid4())
    assert call(app, post_event({"order": order}, key), lambda_context()) == (
        201,
        {"id": str(key_id(key))},
    )
    assert [item["_id"] for item in stored(app, {"order": order})] == [key_id(key)]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "it has 0"),
        ("k" * 256, "it has 256"),
        ("café-order-1", "it holds U+00E9"),
        ("tab\there", "it holds U+0009"),
        ("delete\x7f", "it holds U+007F"),
    ],
    ids=["empty", "256-characters", "not-ascii", "tab", "del"],
)
def test_a_bad_key_is_400_naming_the_header_and_stores_nothing(app, lambda_context, key, problem):
    order = str(uuid.uuid4())
    status, body = call(app, post_event({"order": order}, key), lambda_context())

    assert (status, body) == (400, {"error": f"{WANTED}; {problem}"})
    assert stored(app, {"order": order}) == []


@pytest.mark.parametrize(
    "other",
    [
        {"quantity": 3},  # another value
        {"quantity": 2.0},  # the same number as another type: a double, not an int
        {"quantity": True},  # true, which == alone takes for 1
        {"quantity": 2, "gift": False},  # a field more
        {},  # a field less
    ],
    ids=["value", "double", "boolean", "field-more", "field-less"],
)
def test_the_same_key_with_another_body_is_422_naming_the_header_and_stores_nothing(
    app, lambda_context, other
):
    key, order = new_key(), str(uuid.uuid4())
    first = {"order": order, "quantity": 2}
    assert call(app, post_event(first, key), lambda_context())[0] == 201
    status, body = call(app, post_event({"order": order} | other, key), lambda_context())

    assert (status, body) == (
        422,
        {
            "error": f"the Idempotency-Key header was first sent with another body, stored as "
            f"item {key_id(key)}; a new item needs a new key"
        },
    )
    assert stored(app, {"order": order}) == [{"_id": key_id(key), **first}]


def test_without_a_key_every_post_stores_an_item_of_its_own(app, lambda_context):
    """The ordinary path, unchanged: no header, a new id each time."""
    order = {"order": str(uuid.uuid4())}
    first = call(app, post_event(order), lambda_context())
    again = call(app, post_event(order), lambda_context())

    assert first[0] == again[0] == 201 and first[1]["id"] != again[1]["id"]
    ids = sorted(str(item["_id"]) for item in stored(app, order))
    assert ids == sorted([first[1]["id"], again[1]["id"]])


def test_no_time_left_is_the_plain_503_even_with_a_key(app, lambda_context):
    """Nothing was sent, so nothing may be stored: the 503 says try again, with no id."""
    order = str(uuid.uuid4())
    event = post_event({"order": order}, new_key())
    assert call(app, event, lambda_context(timeout_ms=MARGIN_MS - 1)) == (503, TRY_AGAIN)
    assert stored(app, {"order": order}) == []


@pytest.fixture
def nowhere(app, monkeypatch):
    """The function in a fresh environment whose URI names a port nobody listens on."""
    database = package_module("database")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = deployed_uri_for(
        SimpleNamespace(uri=f"mongodb://127.0.0.1:{port}/?directConnection=true")
    )
    monkeypatch.setattr(app, "settings", dataclasses.replace(app.settings, mongodb_uri=uri))
    monkeypatch.setattr(database, "_client", None)
    yield app
    if database._client is not None:
        database._client.close()


def test_no_server_is_the_plain_503_even_with_a_key(nowhere, lambda_context, function_logs):
    """Server selection found no server, so the insert was never sent: try again, no id."""
    event = post_event({"order": str(uuid.uuid4())}, new_key())
    assert call(nowhere, event, lambda_context(timeout_ms=MARGIN_MS + 1000)) == (503, TRY_AGAIN)
    (record,) = function_logs.records("Database unavailable")
    assert record["cause"] == "no_server" and "outcome" not in record


# ---- the function under the runtime client, against the local replica set ------------------------

# The invocation's timeout: DEADLINE_MARGIN_MS before it, pymongo.timeout ends the insert.
TIMEOUT_MS = 2500
REPLY_AFTER_S = 2.5  # the primary's reply to each write: after the request's deadline


@pytest.fixture
def replica_set(app, local_auth):
    deployment = start_replica_set(local_auth.login())
    yield deployment
    deployment.close()


def invoke(api, event: dict) -> tuple[int, dict]:
    payload = api.invoke(event, TIMEOUT_MS).payload or {}
    return payload.get("statusCode"), json.loads(payload.get("body") or "{}")


def orders_stored(deployment, order: str) -> list[dict]:
    """The documents stored for one order (running_function's database is topology_function)."""
    items = deployment.backend_client().topology_function.items
    return list(items.find({"order": order}))


# fault -> the replica set's attribute, its value on and off, the error the function logs, and
# the log's cause
FAULTS = {
    "reply-after-the-deadline": ("write_latency", REPLY_AFTER_S, 0.0, "NetworkTimeout", "timeout"),
    "write-concern-error": ("write_concern_error", True, False, "WTimeoutError", "error"),
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("keyed", [True, False], ids=["with-key", "without-key"])
def test_a_write_applied_but_not_acknowledged_then_retried(
    replica_set, local_auth, tmp_path, figures, fault, keyed
):
    """The primary stores the order but the function never hears it did: its reply comes after
    the request's deadline, or carries a write concern error. The 503 says the outcome is unknown
    and gives the id, which GET finds; the caller retries until a 201. With the key the order is
    stored once and every answer carries the same id; without it each retry stores it again (the
    counter-example, reported with the figures)."""
    local_only(replica_set)
    attribute, on, off, error, cause = FAULTS[fault]
    order = str(uuid.uuid4())
    key = new_key() if keyed else None
    event = post_event({"order": order, "sku": "ABC-123", "quantity": 2}, key)
    name = f"idempotency-{fault}"
    with running_function(replica_set, local_auth, tmp_path, name) as (api, process):
        assert invoke(api, load_event("health"))[0] == 200, process.logs()[-2000:]
        setattr(replica_set, attribute, on)
        first_status, unknown = invoke(api, event)
        found = invoke(api, load_event("get-item") | {"rawPath": f"/items/{unknown.get('id')}"})
        answers = [(first_status, unknown)]
        for retry in range(3):  # as a caller retries: twice into the fault, then it is over
            if retry == 2:
                setattr(replica_set, attribute, off)
            answers.append(invoke(api, event))
        documents = orders_stored(replica_set, order)
        warnings = [
            record
            for record in process.log_records()
            if record.get("message") == "Database unavailable"
        ]
    statuses = [status for status, _ in answers]
    figures.failures_expected(
        f"idempotency_{fault}_{'with' if keyed else 'without'}_key",
        shows="a write applied but not acknowledged, then retried by the caller",
        value={"statuses": statuses, "orders_stored": len(documents)},
    )
    if keyed:  # the order once, whatever the retries, and every answer with its id
        assert len(documents) == 1, f"{len(documents)} documents stored for one order"
        assert {body.get("id") for _, body in answers} == {str(key_id(key))}
    else:  # the counter-example: every attempt stored the order again
        assert len(documents) == len(answers)
    assert statuses[-1] == 201
    assert first_status == 503, unknown
    assert unknown["outcome"] == "unknown"
    assert unknown["error"].startswith(
        "the database is unavailable or too slow: it did not confirm the write, so item "
        f"{unknown['id']} may or may not be stored; GET /items/{unknown['id']} tells whether it "
        "was"
    )
    assert found == (200, {"id": unknown["id"], **json.loads(event["body"])})
    assert warnings[0]["error"] == error and warnings[0]["cause"] == cause
    assert warnings[0]["outcome"] == "unknown" and warnings[0]["id"] == unknown["id"]
    if keyed:
        assert unknown["error"].endswith(
            "was, and sending it again with the same Idempotency-Key header is safe"
        )
    else:
        assert unknown["error"].endswith(
            "was (a 404 at once can precede a write still under way), and only a request with "
            "an Idempotency-Key header is safe to send again"
        )
