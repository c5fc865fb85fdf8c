"""Safe retries of POST /items: an Idempotency-Key request header names the document's _id.

A POST whose answer was lost (a timeout, a dropped connection, a 503 whose outcome is unknown) may
have stored its document. Sent again with the same Idempotency-Key, it stores nothing more: the
key always gives the same _id, the _id index refuses a second document with it (DuplicateKey), and
routes.py reads the stored one: the body posted again answers 201 with the id, another body 422.

Powertools' idempotency utility does this with a record per key in a store of its own, DynamoDB
or Redis (https://docs.aws.amazon.com/powertools/python/latest/utilities/idempotency/): a second
store to provision, reach from the VPC and keep in step with MongoDB. The _id is checked in the
same write that stores the document, atomically, by the database that holds it, with nothing
added. The header follows the IETF draft "The Idempotency-Key HTTP Header Field"
(https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/); its value is used
exactly as sent, so a client that quotes it (the draft's string syntax) and one that does not are
each consistent with themselves.
"""

import hashlib

import bson
from bson import ObjectId

# API Gateway lowercases every header name in a payload 2.0 event (Powertools' event.headers looks
# names up in any case), and joins a repeated header into one value with commas
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html,
# "Payload format differences"): a repeated key is one key, the same on every retry.
HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
PRINTABLE = frozenset(map(chr, range(0x20, 0x7F)))  # printable ASCII, the space included


class InvalidKey(ValueError):
    """The header's value cannot be a key; the message names the header and says why (400)."""


class KeyReused(Exception):
    """The key names a document stored from another body (422: the draft's answer to a key reused
    with a different payload, "Error Scenarios"; 409 it keeps for a request still in progress)."""

    def __init__(self, item_id: ObjectId) -> None:
        super().__init__(
            f"the {HEADER} header was first sent with another body, stored as item {item_id}; "
            "a new item needs a new key"
        )


def check(key: str) -> str:
    """Return key if it can name a document, else raise InvalidKey."""
    wanted = f"the {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidKey(f"{wanted}; it has {len(key)}")
    if unprintable := next((char for char in key if char not in PRINTABLE), None):
        raise InvalidKey(f"{wanted}; it holds U+{ord(unprintable):04X}")
    return key


def document_id(key: str) -> ObjectId:
    """The _id a key gives: the first 12 bytes of its SHA-256. An ObjectId's first four bytes are
    normally the time it was made; here they are hash bytes, so its generation_time means
    nothing. 96 bits of SHA-256: two keys meet by chance only around 2**48 keys."""
    return ObjectId(hashlib.sha256(key.encode("ascii")).digest()[:12])


def same_document(stored: dict, document: dict) -> bool:
    """Whether the stored document is the one this request would store. JSON objects are unordered
    (RFC 8259, section 4), so fields count whatever their order; values count with their BSON type
    (1, 1.0 and true differ, which == alone would not see)."""
    return bson.encode(_in_name_order(stored)) == bson.encode(_in_name_order(document))


def _in_name_order(value):
    if isinstance(value, dict):
        return {name: _in_name_order(value[name]) for name in sorted(value)}
    if isinstance(value, list):
        return [_in_name_order(item) for item in value]
    return value
