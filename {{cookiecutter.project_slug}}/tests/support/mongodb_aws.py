"""The server side of MONGODB-AWS for the local servers (mongo.py, replica_set.py), as the drivers'
authentication specification gives it (mongodb/specifications, source/auth/auth.md, MONGODB-AWS):

    saslStart     client: {r: 32-byte nonce, p: GS2 flag}   server: {s: r + 32 bytes, h: STS host}
    saslContinue  client: {a: Authorization, d: X-Amz-Date, t: X-Amz-Security-Token}
                  the server rebuilds the signed sts:GetCallerIdentity request with its own nonce,
                  sends it to STS, and maps the ARN STS answers to a user of $external

    users = role_users([function_role_arn])   # the server's users, as Atlas's AWS IAM users
    serve(users, sts.url)                     # where those users' logins are checked
    EXCHANGES                                 # Counter: role ARN (or "refused") -> exchanges

The signed request goes to the local STS (sts.py: moto, checking SigV4 signatures) with the Host
header the client signed for, sts.amazonaws.com: the client never connects to that host. A login is
refused with AuthenticationFailed (18), no reason given, as a server does: when STS refuses the
signature or the session token, when the STS is unreachable, when the request is older than
15 minutes (moto does not check that), when the signature leaves out the server's nonce or the
channel-binding flag (a replayed signature), or when the role has no user. As on Atlas, an assumed
role's ARN (arn:aws:sts::<account>:assumed-role/<role>/<session>) is the user of the role's own ARN.

mongoeco's wire server handles saslStart and saslContinue for its own mechanisms; this module
adds MONGODB-AWS to them (its handlers are patched once, on import) and leaves every other
mechanism to mongoeco.
"""

import asyncio
import collections
import datetime
import http.client
import os
import re
from base64 import standard_b64encode
from dataclasses import dataclass
from urllib.parse import urlsplit

import bson
from bson.binary import Binary
from mongoeco.errors import OperationFailure
from mongoeco.wire import WireAuthUser
from mongoeco.wire._executor_handlers import WireSpecialCommandHandlers

MECHANISM = "MONGODB-AWS"
SOURCE = "$external"
STS_HOST = "sts.amazonaws.com"
REQUEST_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
MAX_AGE = datetime.timedelta(minutes=15)
AUTHENTICATION_FAILED = 18
# what the signature must cover: the request, and the values that tie it to this conversation
REQUIRED_SIGNED_HEADERS = {"host", "x-amz-date", "x-mongodb-server-nonce", "x-mongodb-gs2-cb-flag"}
ASSUMED_ROLE = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/[^/]+$")

EXCHANGES: collections.Counter = collections.Counter()
_STS_URL_OF: dict[str, str] = {}  # a user's name (a role ARN) -> the STS that checks its logins


def role_users(arns: list[str]) -> tuple[WireAuthUser, ...]:
    """The server's users for these roles: $external, MONGODB-AWS only, as Atlas creates them."""
    return tuple(WireAuthUser(arn, None, SOURCE, (MECHANISM,)) for arn in arns)


def serve(users: tuple[WireAuthUser, ...], sts_url: str) -> None:
    """Check these users' logins with the STS at sts_url (a server holds one LocalAuth's users)."""
    for user in users:
        _STS_URL_OF[user.username] = sts_url


def user_of(arn: str) -> str:
    """The database user an ARN from GetCallerIdentity is: an assumed role's is its role's ARN."""
    found = ASSUMED_ROLE.match(arn)
    if found:
        partition, account, role = found.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"
    return arn


@dataclass(frozen=True)
class _Conversation:
    conversation_id: int
    server_nonce: bytes
    gs2_flag: str


def _refused() -> OperationFailure:
    details = {"codeName": "AuthenticationFailed"}
    return OperationFailure("Authentication failed.", code=AUTHENTICATION_FAILED, details=details)


def _payload(body: dict) -> dict:
    try:
        return bson.decode(bytes(body.get("payload") or b""))
    except Exception as error:  # a payload that is not BSON is a failed login, not a crash
        raise _refused() from error


async def _sasl_start(handlers, context) -> dict:
    payload = _payload(context.command_document)
    client_nonce, flag = payload.get("r"), payload.get("p")
    if (
        not isinstance(client_nonce, bytes)
        or len(client_nonce) != 32
        or flag not in (110, 121, 112)
    ):
        raise _refused()
    connection = context.connection
    conversation_id = max(connection.auth_conversations, default=0) + 1
    server_nonce = client_nonce + os.urandom(32)
    connection.auth_conversations[conversation_id] = _Conversation(
        conversation_id, server_nonce, chr(flag)
    )
    reply = {"s": Binary(server_nonce), "h": STS_HOST}
    return {
        "conversationId": conversation_id,
        "done": False,
        "payload": Binary(bson.encode(reply)),
        "ok": 1.0,
    }


async def _sasl_continue(handlers, context, conversation: _Conversation) -> dict:
    connection = context.connection
    connection.auth_conversations.pop(conversation.conversation_id, None)
    payload = _payload(context.command_document)
    authorization, date, token = payload.get("a"), payload.get("d"), payload.get("t")
    users = {user.username: user for user in handlers._auth._users if MECHANISM in user.mechanisms}
    if not isinstance(authorization, str) or not isinstance(date, str) or not _fresh(date):
        raise _refused()
    signed = re.search(r"SignedHeaders=([^,]+)", authorization)
    if not signed or not set(signed.group(1).split(";")) >= REQUIRED_SIGNED_HEADERS:
        raise _refused()
    urls = {_STS_URL_OF.get(name) for name in users}
    if len(urls) != 1 or None in urls:
        raise _refused()
    headers = {
        "Authorization": authorization,
        "X-Amz-Date": date,
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(REQUEST_BODY)),
        "Host": STS_HOST,
        "X-MongoDB-Server-Nonce": standard_b64encode(conversation.server_nonce).decode(),
        "X-MongoDB-GS2-CB-Flag": conversation.gs2_flag,
    }
    if token:
        headers["X-Amz-Security-Token"] = token
    arn = await asyncio.to_thread(_caller, urls.pop(), headers)
    user = users.get(user_of(arn)) if arn else None
    EXCHANGES[user.username if user else "refused"] += 1
    if user is None:
        raise _refused()
    connection.authenticate(
        username=user.username, db=SOURCE, mechanism=MECHANISM, roles=user.roles
    )
    return {
        "conversationId": conversation.conversation_id,
        "done": True,
        "payload": Binary(b""),
        "ok": 1.0,
    }


def _fresh(date: str) -> bool:
    try:
        signed_at = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return False
    return abs(datetime.datetime.now(datetime.UTC) - signed_at) <= MAX_AGE


def _caller(sts_url: str, headers: dict[str, str]) -> str | None:
    """Send the signed GetCallerIdentity to the STS: the caller's ARN, or None (refused, down)."""
    where = urlsplit(sts_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=5)
    try:
        connection.request("POST", "/", body=REQUEST_BODY, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        connection.close()
    found = re.search(r"<Arn>([^<]+)</Arn>", text)
    return found.group(1) if response.status == 200 and found else None


_start, _continue = (
    WireSpecialCommandHandlers._handle_sasl_start,
    WireSpecialCommandHandlers._handle_sasl_continue,
)


async def _handle_sasl_start(self, context):
    if context.command_document.get("mechanism") == MECHANISM:
        return await _sasl_start(self, context)
    return await _start(self, context)


async def _handle_sasl_continue(self, context):
    conversation = context.connection.auth_conversations.get(
        context.command_document.get("conversationId")
    )
    if isinstance(conversation, _Conversation):
        return await _sasl_continue(self, context, conversation)
    return await _continue(self, context)


WireSpecialCommandHandlers._handle_sasl_start = _handle_sasl_start
WireSpecialCommandHandlers._handle_sasl_continue = _handle_sasl_continue
