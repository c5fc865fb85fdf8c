"""Bodies that parse but that MongoDB does not store: each is a 400 that names the field and the
problem, and nothing is stored; bodies right at the limits are stored. Through the handler,
against the real wire-protocol server, with the nesting limit template.yaml gives this project's
Atlas tier.

Without the function's checks some of these bodies end in a 500 (the driver refuses integers
beyond int64, lone surrogates, NUL in a name and far over 16 MiB; the parser, nesting thousands
of levels deep) and the test server stores the others, though MongoDB's documented limits rule
them out (too deep, just over 16 MiB, too many dotted parts) or they come back as text that is
not JSON (NaN, Infinity, 1e400): so the checks run before anything is sent. The server's own
refusals (a collection validator here) are 400s too, with the code's general reason: never the
server's own words, which quote the document's values.
"""

import json
import os
from dataclasses import replace

import pytest
from bson import ObjectId, encode
from pymongo.errors import NetworkTimeout, OperationFailure, WriteConcernError, WriteError

from tests.conftest import package_module
from tests.test_config import deployed_depth

config = package_module("config")

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
INT64_RANGE = f"outside MongoDB's 64-bit integer range ({INT64_MIN} to {INT64_MAX})"
LONE_SURROGATE = "which is not Unicode text and has no UTF-8 form for MongoDB to store"
NOT_JSON = "which is not JSON (RFC 8259 has no NaN or Infinity)"
MIB16 = 16 * 1024 * 1024


DEPTH = int(deployed_depth())


@pytest.fixture
def function(app, monkeypatch):
    """The function with the settings it has when deployed: its tier's nesting limit included."""
    deployed = os.environ | {"MONGODB_MAX_DOCUMENT_DEPTH": str(DEPTH)}
    monkeypatch.setattr(app, "settings", config.load(deployed))
    return app


# The deployed function's Timeout (template.yaml's default): a 16 MiB body is real work for the
# in-process test server too, and a loaded test machine must not turn it into a 503.
BIG_BODY_TIMEOUT_MS = 15_000


def post(function, event, lambda_context, body: str, timeout_ms: int = 3000) -> tuple[int, dict]:
    response = function.handler(event("post-item", body=body), lambda_context(timeout_ms))
    return response["statusCode"], json.loads(response["body"])


def stored(function) -> int:
    """How many documents the function's items collection holds."""
    return package_module("database").items(function.settings).count_documents({})


def nested(levels: int, container: str = "object", innermost: str = "1") -> str:
    """A body `levels` levels deep: the body is level 1, and each object (or array) in it adds one;
    the innermost value is `innermost`."""
    value = innermost
    for _ in range(levels - 1):
        value = '{"a": ' + value + "}" if container == "object" else "[" + value + "]"
    return '{"a": ' + value + "}"


def too_deep(kind: str, path: str) -> str:
    return (
        f"the {kind} at {path} is nesting level {DEPTH + 1}; MongoDB stores at most {DEPTH} "
        "levels on this cluster (the body is level 1, each object or array in it adds one)"
    )


def too_large(body: str) -> str:
    size = len(encode({"_id": ObjectId(), **json.loads(body)}))
    return (
        f"the body is {size} bytes as BSON (with its _id), more than the 16 MiB "
        f"({MIB16} bytes) MongoDB stores in one document"
    )


def padded(size: int) -> str:
    """A body that is exactly `size` bytes of BSON once the driver has added its _id."""
    overhead = len(encode({"_id": ObjectId(), "pad": ""}))
    return json.dumps({"pad": "x" * (size - overhead)})


BAD_BODIES = {
    "integer above int64": (
        '{"price": {"amount": 9223372036854775808}}',
        f"the integer at body.price.amount is {INT64_RANGE}",
    ),
    "integer below int64": (
        '{"n": [1, -9223372036854775809]}',
        f"the integer at body.n[1] is {INT64_RANGE}",
    ),
    "number beyond a double": (
        '{"n": 1e400}',
        "the number at body.n is outside the range of a 64-bit double",
    ),
    "lone surrogate in a string": (
        r'{"name": "caf\ud800"}',
        f"the string at body.name holds a lone surrogate (\\ud800), {LONE_SURROGATE}",
    ),
    "lone surrogate in an array": (
        r'{"tags": ["ok", "\udfff"]}',
        f"the string at body.tags[1] holds a lone surrogate (\\udfff), {LONE_SURROGATE}",
    ),
    "lone surrogate in a field name": (
        r'{"meta": {"\udc00": 1}}',
        f'the field name "\\udc00" at body.meta holds a lone surrogate (\\udc00), {LONE_SURROGATE}',
    ),
    "NUL in a field name": (
        r'{"meta": {"a\u0000b": 1}}',
        'the field name "a\\u0000b" at body.meta contains a NUL character, which MongoDB field '
        "names cannot contain",
    ),
    "field name of 256 dotted parts": (
        '{"' + "a." * 255 + 'a": 1}',
        'the field name "' + "a." * 20 + '"... at body has 256 dot-separated parts; MongoDB '
        "allows at most 255",
    ),
    "NaN": ('{"x": NaN}', f"the value at body.x is NaN, {NOT_JSON}"),
    "Infinity": ('{"x": [Infinity]}', f"the value at body.x[0] is Infinity, {NOT_JSON}"),
    "-Infinity": ('{"x": {"y": -Infinity}}', f"the value at body.x.y is -Infinity, {NOT_JSON}"),
    "objects one level too deep": (
        nested(DEPTH + 1),
        too_deep("object", "body" + ".a" * DEPTH),
    ),
    "arrays one level too deep": (
        nested(DEPTH + 1, "array"),
        too_deep("array", "body.a" + "[0]" * (DEPTH - 1)),
    ),
    "an empty object one level too deep": (
        nested(DEPTH, innermost="{}"),
        too_deep("object", "body" + ".a" * DEPTH),
    ),
    "nested too deep to parse": (
        '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "the body is nested too deeply to parse, far deeper than MongoDB stores",
    ),
}


@pytest.mark.parametrize(("body", "message"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_body_mongodb_cannot_store_is_400_naming_the_problem(
    function, event, lambda_context, body, message
):
    before = stored(function)
    assert post(function, event, lambda_context, body) == (400, {"error": message})
    assert stored(function) == before


@pytest.mark.parametrize(
    "make_body",
    [lambda: '{"a": [' + ", ".join(["0"] * 1_400_000) + "]}", lambda: padded(MIB16 + 1)],
    ids=["4 MB of JSON, 17 MB of BSON", "16 MiB of BSON and a byte"],
)
def test_a_body_over_16_mib_of_bson_is_400(function, event, lambda_context, make_body):
    body = make_body()
    before = stored(function)
    status, error = post(function, event, lambda_context, body, BIG_BODY_TIMEOUT_MS)
    assert (status, error) == (400, {"error": too_large(body)})
    assert stored(function) == before


GOOD_BODIES = {
    "objects at the depth limit": nested(DEPTH),
    "arrays at the depth limit": nested(DEPTH, "array"),
    "the int64 extremes": json.dumps({"max": INT64_MAX, "min": INT64_MIN, "small": [0, -1, 2**31]}),
    "the largest doubles": '{"big": 1.7976931348623157e308, "small": -5e-324}',
    "dots and dollars in field names": json.dumps(
        {"a.b": 1, "$price": 50, "location": {"$db": "novels", "$inc": True}, "x$y": [{"$z": 1}]}
    ),
    "a field name of 255 dotted parts": '{"' + "a." * 254 + 'a": 1}',
    "a surrogate pair, NUL and non-ASCII text": (
        r'{"emoji": "\ud83d\ude00", "nul": "a\u0000b", "é": "ü"}'
    ),
}


@pytest.mark.parametrize("body", GOOD_BODIES.values(), ids=GOOD_BODIES.keys())
def test_a_body_within_the_limits_is_stored_as_sent(function, event, lambda_context, body):
    status, created = post(function, event, lambda_context, body)
    assert status == 201, created
    get = event("get-item", rawPath=f"/items/{created['id']}")
    response = function.handler(get, lambda_context())
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {**json.loads(body), "id": created["id"]}


def test_a_body_of_exactly_16_mib_of_bson_passes_mongodbs_limits_but_not_lambdas(
    function, event, lambda_context
):
    """MongoDB would store it; Lambda could not return it (tests/test_responses.py), so it is a
    413 and nothing is stored."""
    body = padded(MIB16)
    package_module("documents").check(json.loads(body), max_depth=DEPTH)
    before = stored(function)
    status, error = post(function, event, lambda_context, body, BIG_BODY_TIMEOUT_MS)
    limit = package_module("responses").MAX_RESPONSE_BYTES
    assert status == 413, error
    assert f"more than the {limit} bytes a Lambda function can return" in error["error"]
    assert stored(function) == before


# A $jsonSchema validator: the test server enforces it as mongod does (code 121).
VALIDATOR = {"$jsonSchema": {"properties": {"price": {"bsonType": "int", "minimum": 0}}}}
REFUSED = "the database refused the document (DocumentValidationFailure, code 121): "
VALIDATOR_REASON = "the collection's validator rejects it"


@pytest.fixture
def validated(function, monkeypatch):
    """The function pointed at a database whose items collection has VALIDATOR."""
    database, settings = package_module("database"), function.settings
    name = f"{settings.database}_validated"
    database.client(settings)[name].create_collection("items", validator=VALIDATOR)
    monkeypatch.setattr(function, "settings", replace(settings, database=name))
    yield function
    database.client(settings)[name].drop_collection("items")


def test_a_document_the_server_refuses_is_400_with_its_reason(validated, event, lambda_context):
    assert post(validated, event, lambda_context, '{"price": -1}') == (
        400,
        {"error": REFUSED + VALIDATOR_REASON},
    )
    assert stored(validated) == 0
    assert post(validated, event, lambda_context, '{"price": 3}')[0] == 201
    assert stored(validated) == 1


def test_a_refused_document_never_looks_like_refused_credentials(
    validated, event, lambda_context, monkeypatch
):
    """The server's error quotes the refused value; words in it must not trigger a re-login."""
    database = package_module("database")
    # no idle period behind this request, whatever the tests before it did (a new client after
    # one is test_idle_connections.py's subject, not this test's)
    monkeypatch.setattr(database, "_used_at", None)
    client = database.client(validated.settings)
    body = '{"price": "Authentication failed"}'
    assert post(validated, event, lambda_context, body)[0] == 400
    assert database._client is client


# The server's codes for a document it will not store (src/mongo/base/error_codes.yml).
REFUSED_DOCUMENT_CODES = {
    2: "BadValue",
    15: "Overflow",
    22: "InvalidBSON",
    52: "DollarPrefixedFieldName",
    53: "InvalidIdField",
    55: "InvalidDBRef",
    121: "DocumentValidationFailure",
    171: "CannotIndexParallelArrays",
    10334: "BSONObjectTooLarge",
    11000: "DuplicateKey",
}


def test_the_function_knows_each_code_for_a_refused_document(app):
    known = package_module("database").REFUSED_DOCUMENT_CODES
    assert {code: name for code, (name, _) in known.items()} == REFUSED_DOCUMENT_CODES


@pytest.mark.parametrize(("code", "name"), REFUSED_DOCUMENT_CODES.items())
def test_every_code_for_a_refused_document_is_a_refusal_without_the_servers_words(app, code, name):
    """The server's errmsg may quote the document; the answer gives the code's general reason."""
    database = package_module("database")
    errmsg = 'the server\'s words: { email: "alice@example.com" }'

    def refuse(items):
        raise WriteError(errmsg, code, {"code": code, "errmsg": errmsg})

    with pytest.raises(database.DocumentRefused) as raised:
        database.run(app.settings, refuse)
    message = str(raised.value)
    assert message.startswith(f"the database refused the document ({name}, code {code}): ")
    assert "alice" not in message and "server's words" not in message
    assert raised.value.code == code
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize(
    ("details", "fields"),
    [
        ({"keyPattern": {"email": 1}, "keyValue": {"email": "alice@example.com"}}, "email"),
        ({"keyPattern": {"email": 1, "org.id": -1}}, "email, org.id"),
        ({"keyValue": {"email": "alice@example.com"}}, "email"),
        ({}, None),
    ],
    ids=["pattern and value", "compound pattern", "value only", "neither"],
)
def test_a_duplicate_key_names_the_keys_fields_not_their_values(app, details, fields):
    database = package_module("database")
    errmsg = "E11000 duplicate key error collection: db.items index: email_1 dup key: { ... }"

    def refuse(items):
        raise WriteError(errmsg, 11000, {"code": 11000, "errmsg": errmsg, **details})

    with pytest.raises(database.DocumentRefused) as raised:
        database.run(app.settings, refuse)
    prefix = "the database refused the document (DuplicateKey, code 11000): another document has "
    if fields is None:
        assert str(raised.value) == prefix + "the same value of a unique index's key"
    else:
        assert str(raised.value) == prefix + f"the same {fields}, which a unique index allows once"


@pytest.mark.parametrize("code", [22, 10334])
def test_a_command_the_server_cannot_read_for_its_document_is_a_refusal(app, code):
    database = package_module("database")

    def refuse(items):
        raise OperationFailure("the reason", code, {"ok": 0, "errmsg": "the reason", "code": code})

    with pytest.raises(database.DocumentRefused, match=f"code {code}\\): ") as raised:
        database.run(app.settings, refuse)
    assert "the reason" not in str(raised.value)


@pytest.mark.parametrize(
    "error",
    [
        OperationFailure("not authorized", 13, {"ok": 0, "errmsg": "not authorized", "code": 13}),
        OperationFailure("over your space quota", 8000, {"ok": 0, "code": 8000}),
        OperationFailure("bad option", 2, {"ok": 0, "errmsg": "bad option", "code": 2}),
        WriteConcernError("bad write concern", 2, {"code": 2, "errmsg": "bad write concern"}),
        NetworkTimeout("timed out"),
    ],
    ids=["unauthorized", "atlas quota", "a command's bad value", "write concern", "timeout"],
)
def test_other_database_errors_stay_unavailable(app, error):
    database = package_module("database")

    def fail(items):
        raise error

    with pytest.raises(database.Unavailable):
        database.run(app.settings, fail)
