"""What MongoDB stores, checked before a document is sent: check() walks a parsed body once and
raises Unstorable naming the field and the problem; routes.py answers 400 with its message.

The test server accepts documents Atlas refuses, so the limits are checked here, as MongoDB
documents them, rather than left to whichever server answers:

- integers from -2**63 to 2**63 - 1: BSON's widest integer is int64, "64-bit signed integer"
  (https://bsonspec.org/spec.html), and pymongo refuses the rest with an OverflowError;
- finite numbers: JSON has no NaN or Infinity (RFC 8259, section 6, "Numeric values that cannot be
  represented in the grammar below (such as Infinity and NaN) are not permitted"), but Python's
  parser reads them: it hands them to parse_constant below. A number too large for a double
  (1e400) reads as infinity;
- text that is Unicode: a JSON escape can name half a UTF-16 surrogate pair ("\\ud800"), which
  has no UTF-8 form, and BSON strings and field names are UTF-8;
- field names without NUL and with at most 255 dot-separated parts, and no more levels of nesting
  than the cluster tier stores (config.py reads its limit; check() says how levels are counted);
- at most MAX_DOCUMENT_BYTES of BSON, counted with the _id the driver adds.

Field names with a dot or a leading $ are stored: MongoDB 5.0 and later allow both in inserts, top
level and nested (manual, "Field Names with Periods and Dollar Signs", "Dollar-Prefixed Field
Names": https://www.mongodb.com/docs/manual/core/dot-dollar-considerations/).

Pure Python: no driver, no settings; the caller passes the cluster tier's nesting limit.
"""

import json
import math
import re

# "The maximum BSON document size is 16 mebibytes" (manual, Limits and Thresholds, "BSON Document
# Size": https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-BSON-Document-Size).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
# A field name may not "have more than 255 words separated by periods" (manual, "Field Names with
# Periods and Dollar Signs", General Restrictions).
MAX_NAME_PARTS = 255
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# The _id the driver adds to every insert: type byte, "_id\0", a 12-byte ObjectId.
_ID_BYTES = 1 + 4 + 12
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHOWN_NAME_CHARS = 40  # a field name longer than this is cut short in messages


class Unstorable(ValueError):
    """The body cannot be stored as it is; the message names the field and the problem."""


class NonJSONConstant:
    """NaN, Infinity or -Infinity as Python's JSON parser read it; check() refuses it."""

    def __init__(self, name: str) -> None:
        self.name = name


def parse_constant(name: str) -> NonJSONConstant:
    """json.loads(..., parse_constant=parse_constant): keep the constant for check() to name."""
    return NonJSONConstant(name)


# Where a message names the field's path: NUL, which a field name shown as JSON never holds raw.
PATH = "\0path\0"


class _Problem(Exception):
    """A problem found during the walk; each container on the way up adds its step to the path."""

    def __init__(self, message: str) -> None:
        self.message = message  # with PATH where the field's path goes
        self.steps: list[str] = []


def check(document: dict, *, max_depth: int) -> None:
    """Raise Unstorable if MongoDB would not store document (a parsed JSON object) as it is.

    Depth is counted the way the server counts it, and conservatively where the manual is silent:
    the body itself is level 1, and every object or array in it adds a level, empty ones too. A
    body of max_depth levels is stored; one more level is refused. The server counts the top-level
    document as a level (mongodb/mongo src/mongo/db/ops/insert.cpp, validateDepth: its frame stack
    starts with the document; the test of SERVER-26703 expects an insert of 101 nested objects, the
    outer one included, to fail), but it skips empty objects and arrays, and its own limit is
    higher (src/mongo/bson/bson_depth.cpp: maxBSONDepth, 200, less 20). The manual's 100 (50 on M0
    and Flex) is the figure Atlas promises, so that is the one applied.
    """
    try:
        size = _object_bytes(document, 1, max_depth) + _ID_BYTES
    except _Problem as problem:
        path = "body" + "".join(reversed(problem.steps))
        raise Unstorable(problem.message.replace(PATH, path)) from None
    if size > MAX_DOCUMENT_BYTES:
        raise Unstorable(
            f"the body is {size} bytes as BSON (with its _id), more than the 16 MiB "
            f"({MAX_DOCUMENT_BYTES} bytes) MongoDB stores in one document"
        )


def _object_bytes(document: dict, depth: int, max_depth: int) -> int:
    size = 5  # int32 length and the terminating NUL
    for name, value in document.items():
        size += 2 + _name_bytes(name)  # a name's problem is reported at the object holding it
        try:
            size += _value_bytes(value, depth, max_depth)
        except _Problem as problem:
            problem.steps.append(_name_step(name))
            raise
    return size


def _array_bytes(values: list, depth: int, max_depth: int) -> int:
    size = 5
    for index, value in enumerate(values):
        try:
            size += 2 + len(str(index)) + _value_bytes(value, depth, max_depth)
        except _Problem as problem:
            problem.steps.append(f"[{index}]")
            raise
    return size


def _value_bytes(value, depth: int, max_depth: int) -> int:
    """The BSON size of value, the element's type byte and name excepted; depth is its parent's."""
    if isinstance(value, str):
        size = _utf8_bytes(value)
        if size is None:
            raise _lone_surrogate(f"the string at {PATH}", value)
        return 5 + size
    if isinstance(value, bool) or value is None:  # bool before int: True is an int in Python
        return 1 if value is not None else 0
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Problem(
                f"the integer at {PATH} is outside MongoDB's 64-bit integer range "
                f"({INT64_MIN} to {INT64_MAX})"
            )
        return 4 if INT32_MIN <= value <= INT32_MAX else 8
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Problem(f"the number at {PATH} is outside the range of a 64-bit double")
        return 8
    if isinstance(value, NonJSONConstant):
        raise _Problem(
            f"the value at {PATH} is {value.name}, which is not JSON "
            "(RFC 8259 has no NaN or Infinity)"
        )
    if isinstance(value, dict | list):
        if depth + 1 > max_depth:
            kind = "object" if isinstance(value, dict) else "array"
            raise _Problem(
                f"the {kind} at {PATH} is nesting level {depth + 1}; MongoDB stores at most "
                f"{max_depth} levels on this cluster (the body is level 1, each object or array "
                "in it adds one)"
            )
        if isinstance(value, dict):
            return _object_bytes(value, depth + 1, max_depth)
        return _array_bytes(value, depth + 1, max_depth)
    raise TypeError(f"not a value JSON parses to: {type(value).__name__}")


def _name_bytes(name: str) -> int:
    """The UTF-8 size of a field name, checked as MongoDB requires."""
    size = _utf8_bytes(name)
    if size is None:
        raise _lone_surrogate(f"the field name {_shown(name)} at {PATH}", name)
    if "\0" in name:
        raise _Problem(
            f"the field name {_shown(name)} at {PATH} contains a NUL character, which MongoDB "
            "field names cannot contain"
        )
    if name.count(".") >= MAX_NAME_PARTS:
        raise _Problem(
            f"the field name {_shown(name)} at {PATH} has {name.count('.') + 1} dot-separated "
            f"parts; MongoDB allows at most {MAX_NAME_PARTS}"
        )
    return size


def _utf8_bytes(text: str) -> int | None:
    """The UTF-8 size of text; None if it holds a lone surrogate, which has no UTF-8 form."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _lone_surrogate(what: str, text: str) -> _Problem:
    surrogate = next(char for char in text if "\ud800" <= char <= "\udfff")
    return _Problem(
        f"{what} holds a lone surrogate ({json.dumps(surrogate)[1:-1]}), which is not Unicode "
        "text and has no UTF-8 form for MongoDB to store"
    )


def _name_step(name: str) -> str:
    plain = len(name) <= _SHOWN_NAME_CHARS and _PLAIN_NAME.fullmatch(name)
    return f".{name}" if plain else f"[{_shown(name)}]"


def _shown(name: str) -> str:
    """The field name as a JSON string (escapes visible); a long one cut short, with "..." after."""
    if len(name) <= _SHOWN_NAME_CHARS:
        return json.dumps(name)
    return json.dumps(name[:_SHOWN_NAME_CHARS]) + "..."
