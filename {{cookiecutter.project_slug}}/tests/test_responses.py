"""Items near Lambda's 6 MB response limit: what is stored can be read back.

Lambda delivers at most MAX_RESPONSE_BYTES of a function's response, counted on what the runtime
client posts (the local Runtime API enforces it as Lambda does: a longer response is an error, and
API Gateway answers 5xx). The function serializes its answers compactly with text as UTF-8, and
answers 413 to a POST whose item would be too large to GET, storing nothing.

The edge is measured, not computed: the size of the GET of two small items of each kind, as the
real runtime client posted it, gives the bytes per unit (a character, a number) and the rest; the
items just under and just over the edge follow. The runtime client writes non-ASCII text as UTF-8 on
Lambda's managed Python runtimes (3.12 and later, which it tells by AWS_EXECUTION_ENV) and as \\u
escapes anywhere else (a container image, a custom runtime); both are run. On a managed runtime
text cannot reach the response limit before the request's: an item of text that fits the request
is read back; numbers written short (1e15, 18 characters once read) still need the 413.
"""

import json
from dataclasses import dataclass

import pytest
from awslambdaric.lambda_runtime_marshaller import Encoder, LambdaMarshaller

from tests.conftest import load_event, package_module
from tests.support.project import deployed_function
from tests.support.runtime_api import MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, encode_event
from tests.test_runtime import running_function

responses = package_module("responses")

BIG_TIMEOUT_MS = 30_000
MANAGED_RUNTIME = f"AWS_Lambda_{deployed_function().runtime}"

TEXTS = {
    "ascii": "plain text",
    "quotes and backslashes": 'say "hi" \\ bye',
    "control characters": "line\nbreak\ttab\x01\x1f",
    "accented": "café crème brûlée",
    "cjk": "中文文本",
    "emoji": "😀🎉👍🏽",
    "line separators": "a\u2028b\u2029c\x7f",
}


@pytest.mark.parametrize(
    "execution_env",
    [MANAGED_RUNTIME, "AWS_Lambda_python3.12", "AWS_Lambda_python3.11", "AWS_ECS_EC2", None],
)
def test_the_function_knows_when_the_runtime_client_escapes_non_ascii(monkeypatch, execution_env):
    if execution_env is None:
        monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)
    else:
        monkeypatch.setenv("AWS_EXECUTION_ENV", execution_env)
    assert responses._runtime_escapes_non_ascii() == Encoder().ensure_ascii


@pytest.mark.parametrize("escape", [False, True], ids=["managed runtime", "elsewhere"])
@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_the_size_counted_is_what_the_runtime_client_posts(monkeypatch, escape, text):
    if escape:
        monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)
    else:
        monkeypatch.setenv("AWS_EXECUTION_ENV", MANAGED_RUNTIME)
    response = responses.item_response({"text": text, "n": [1e15, 2], "id": "0" * 24})
    posted, _ = LambdaMarshaller().marshal_response(response)
    assert responses.delivered_bytes(response, escape_non_ascii=escape) == len(posted.encode())


def test_the_body_is_compact_and_keeps_text_as_utf8():
    assert responses.serialize({"a": [1, 2.5], "b": "中😀", "c": None}) == (
        '{"a":[1,2.5],"b":"中😀","c":null}'
    )


# Bodies whose GET grows the most for their length: every kind the bound must hold for.
HEAVIEST = {
    "short numbers": '{"n":[' + ",".join(["1e15"] * 500) + "]}",
    "one short number": '{"n":1e15}',
    "emoji": '{"t":"' + "😀" * 500 + '"}',
    "escaped emoji": '{"t":"' + "\\ud83d\\ude00" * 500 + '"}',
    "accented": '{"t":"' + "é" * 500 + '"}',
    "cjk": '{"t":"' + "中" * 500 + '"}',
    "quotes": '{"t":"' + '\\"' * 500 + '"}',
    "control characters": '{"t":"' + "\\u0001\\n" * 500 + '"}',
    "many short names": "{" + ",".join(f'"{i}":0' for i in range(500)) + "}",
    "empty": "{}",
}


@pytest.mark.parametrize("escape", [False, True], ids=["managed runtime", "elsewhere"])
@pytest.mark.parametrize("body", HEAVIEST.values(), ids=HEAVIEST.keys())
def test_no_body_outweighs_the_bound_that_skips_the_count(escape, body):
    item = {**json.loads(body), "id": "0" * 24}
    exact = responses.delivered_bytes(responses.item_response(item), escape_non_ascii=escape)
    assert exact <= responses.most_bytes(len(body), escape_non_ascii=escape)


@dataclass(frozen=True)
class Kind:
    """Items made of `units` repetitions of one unit: text in one field, or an array of numbers."""

    unit: str
    numbers: bool = False

    def body(self, units: int) -> str:
        if self.numbers:
            return '{"n":[' + ",".join([self.unit] * units) + "]}"
        return json.dumps({"text": self.unit * units}, ensure_ascii=False)


KINDS = {
    "ascii numbers": Kind("1e15", numbers=True),
    "cjk": Kind("中"),
    "emoji": Kind("😀"),
}
# What a unit costs in the GET's answer, in bytes: the runtime's escape of a character (6, 12 for
# a surrogate pair) or its UTF-8; a number written in full and its comma.
# Numbers are ASCII, which both runtimes write alike: they run where the function is deployed.
UNIT_BYTES = {
    ("managed", "ascii numbers"): 19,
    ("elsewhere", "cjk"): 6,
    ("elsewhere", "emoji"): 12,
}


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory):
    """The function as a container image or custom runtime runs it: no AWS_EXECUTION_ENV."""
    tmp_path, extra = tmp_path_factory.mktemp("elsewhere"), {"POWERTOOLS_SERVICE_NAME": "items"}
    with running_function(tmp_path, "responses_tests", extra) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def managed(tmp_path_factory):
    """The function as Lambda's managed runtime (template.yaml's Runtime) runs it."""
    extra = {"POWERTOOLS_SERVICE_NAME": "items", "AWS_EXECUTION_ENV": MANAGED_RUNTIME}
    with running_function(tmp_path_factory.mktemp("managed"), "responses_tests", extra) as runtime:
        yield runtime


def stored(runtime) -> int:
    return runtime.mongo.admin_client()["responses_tests"]["items"].count_documents({})


def post(runtime, body: str):
    result = runtime.invoke("post-item", BIG_TIMEOUT_MS, body=body)
    assert result.status == "success", (result.status, result.payload)
    return result.payload["statusCode"], json.loads(result.payload["body"])


def get(runtime, item_id: str):
    return runtime.invoke("get-item", BIG_TIMEOUT_MS, rawPath=f"/items/{item_id}")


def answer_bytes(runtime, body: str) -> int:
    """Store body and read it back: the size of the GET's answer as the runtime client posted it."""
    status, created = post(runtime, body)
    assert status == 201, created
    result = get(runtime, created["id"])
    assert result.status == "success", result.payload
    return result.response_bytes


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "kind"), UNIT_BYTES, ids=[" ".join(key) for key in UNIT_BYTES])
def test_an_item_just_under_the_response_limit_is_read_back_one_unit_more_is_413(
    request, figures, mode, kind
):
    runtime, make = request.getfixturevalue(mode), KINDS[kind]
    one, two = (answer_bytes(runtime, make.body(units)) for units in (1, 2))
    per_unit, rest = two - one, one - (two - one)
    assert per_unit == UNIT_BYTES[mode, kind]
    under = (MAX_RESPONSE_BYTES - rest) // per_unit

    before = stored(runtime)
    status, created = post(runtime, make.body(under))
    assert status == 201, created
    result = get(runtime, created["id"])
    assert (result.status, result.payload["statusCode"]) == ("success", 200), result.payload
    assert MAX_RESPONSE_BYTES - per_unit < result.response_bytes <= MAX_RESPONSE_BYTES
    assert json.loads(result.payload["body"]) == {**json.loads(make.body(under)), **created}

    status, refused = post(runtime, make.body(under + 1))
    size = rest + per_unit * (under + 1)
    assert (status, refused) == (
        413,
        {
            "error": f"the item would be {size} bytes as the answer to its GET, more than the "
            f"{MAX_RESPONSE_BYTES} bytes a Lambda function can return (its 6 MB response "
            "limit); nothing was stored"
        },
    )
    assert stored(runtime) == before + 1
    figures.values.setdefault("response_limit", {})[f"{mode} {kind}"] = {
        "units_stored": under,
        "body_bytes": len(make.body(under).encode()),
        "get_answer_bytes": result.response_bytes,
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cjk", "emoji"])
def test_on_a_managed_runtime_text_that_fits_the_request_is_read_back(managed, figures, kind):
    """The finding of issue 17: a body just under the request limit was stored, and its GET,
    each character escaped twice, was more than twice the response limit."""
    make = KINDS[kind]

    def event_bytes(units: int) -> int:
        return len(encode_event(load_event("post-item") | {"body": make.body(units)}))

    per_unit = event_bytes(1) - event_bytes(0)
    largest = (MAX_REQUEST_BYTES - event_bytes(0)) // per_unit
    before = stored(managed)

    status, created = post(managed, make.body(largest))
    assert status == 201, created
    result = get(managed, created["id"])
    assert result.status == "success", result.payload
    assert result.payload["statusCode"] == 200
    assert result.response_bytes <= MAX_RESPONSE_BYTES
    assert json.loads(result.payload["body"]) == {**json.loads(make.body(largest)), **created}

    # one character more is Lambda's to refuse: the function never sees it
    over = managed.invoke("post-item", BIG_TIMEOUT_MS, body=make.body(largest + 1))
    assert over.status == "refused"
    assert str(MAX_REQUEST_BYTES) in over.payload["errorMessage"]
    assert stored(managed) == before + 1
    figures.values.setdefault("response_limit", {})[f"managed {kind} at the request limit"] = {
        "event_bytes": event_bytes(largest),
        "get_answer_bytes": result.response_bytes,
    }
