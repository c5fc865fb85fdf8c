"""A local three-member replica set that behaves, towards pymongo, like an Atlas cluster.

    rs = start_replica_set(local_auth.login())  # MONGODB_TEST_URI if set, else the facade
    rs.uri                               # all members, replicaSet=..., tls=true&tlsCAFile=...
    rs.login, rs.username, rs.password   # who may sign in (mongo.Login): the auth mode's users
    rs.ca_file                           # None without TLS
    rs.members                           # Member: .address, .connections_opened, .connections_live,
                                         # .connections (one ConnectionRecord per accepted socket:
                                         # TLS version, client metadata, commands, kind "monitor" or
                                         # "pool"), .live(kind), and with a connection rate limit
                                         # .limiter (limiter.py's counters), .queued, .abandoned,
                                         # .wasted, .longest_queue_wait
    rs.primary                           # the Member that is primary now, or None (an election)
    rs.step_down(election_seconds=2)     # the primary steps down now; another member is elected
    member.hanging = True                # the member accepts connections and reads requests but
                                         # answers nothing (a partition); False answers again
    rs.wait_for_primary(timeout=10)      # after election_seconds, with a higher electionId
    rs.tls_versions()                    # Counter of the TLS versions negotiated, None for none
    rs.write_latency = 0.5               # the primary holds each write's reply (writes in flight);
                                         # past the request's deadline: applied, never acknowledged
    rs.write_concern_error = True        # the primary applies each write, then answers it with a
                                         # writeConcernError (WriteConcernTimeout, as w:majority's)
    rs.backend_client()                  # a MongoClient straight to the shared data
    rs.close()

Each member is a small asyncio server on 127.0.0.1 (its own port, TLS with a test CA made by
trustme) in front of ONE shared mongoeco wire server, so every member sees the same data, as a
replica set's members do once replicated. A member answers hello/isMaster itself: it forwards
the command to mongoeco (so authentication and the limits stay mongoeco's)
and rewrites only the reply: setName, setVersion, hosts, primary, me, isWritablePrimary or
ismaster, secondary, electionId. pymongo 4.20 sends its handshake as an OP_MSG `ismaster` with
helloOk and its monitors then poll with `hello`; OP_QUERY (older drivers) is answered too, with
an OP_REPLY. Everything else is forwarded unchanged, except that a member
that is not primary refuses what mongod refuses there: writes with NotWritablePrimary (10107)
and primary reads with NotPrimaryNoSecondaryOk (13435), and the RetryableWriteError label when
the command carries a txnNumber, as mongod 4.4+ does; pymongo retries a write only on that label.

Step-down, as mongod 4.2+ does it: the primary becomes a secondary at once, keeps every
connection open, and fails the writes in flight with InterruptedDueToReplStateChange (11602);
the driver then marks the server Unknown, re-checks it, and waits for a new primary. No member
is primary until election_seconds have passed, then the next member is, with electionId one
term higher. Retryable writes are answered once: a retry with the lsid and txnNumber of a write
already applied gets the stored reply instead of being applied again (mongod keeps that record
in config.transactions; mongoeco does not, so the facade does). mongoeco accepts and ignores
what a driver adds for a replica set (lsid, txnNumber, $clusterTime, readConcern and writeConcern
majority, $readPreference), so nothing is stripped from the requests.

new_connections_per_second: each member admits at most that many new connections a second, as
Atlas's M10/M20 limit of 15 a second per node, through limiter.py's RateLimiter (mongod's
limiter: a token bucket, a FIFO queue, a token returned by a client that leaves the queue; its
burst_seconds, max_queue_depth and max_queue_seconds are passed on). An excess connection is
accepted by TCP and waits where mongod's ingress connection establishment rate limiter holds a
new session: before its TLS handshake (with TLS the establishment fails during the TLS
handshake, without TLS during hello), so a queued client waits in its TLS handshake.

What this is not: no oplog, replication lag, rollback, write concern waits, $clusterTime or
operationTime, topologyVersion (so no streaming hello: pymongo polls even in stream mode), and
no real election (no votes, no priority, no catch-up). With MONGODB_TEST_URI set nothing is
started: start_replica_set returns an ExternalReplicaSet whose per-member figures come from
serverStatus (connections.totalCreated and current, which include everyone's connections) and
whose fault methods raise FaultsUnsupported.
"""

import asyncio
import collections
import functools
import itertools
import os
import select
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import bson
from bson import ObjectId
from mongoeco.wire import AsyncMongoEcoProxyServer
from pymongo import MongoClient, uri_parser

from tests.support.limiter import RateLimiter
from tests.support.mongo import (
    USERINFO,
    FaultsUnsupported,
    Login,
    ServerStatusConnections,
    SignsInWithLogin,
    _Loop,
    external_login,
)

SET_NAME = "atlas-local-shard-0"
OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
MORE_TO_COME = 1 << 1
CHECKSUM_PRESENT = 1 << 0
QUERY_SECONDARY_OK = 1 << 2
MAX_MESSAGE = 48_000_000
HELLO = frozenset({"hello", "ismaster"})
# Commands mongod refuses on a member that is not primary, whatever the read preference.
WRITES = frozenset(
    {
        "insert",
        "update",
        "delete",
        "findandmodify",
        "bulkwrite",
        "create",
        "drop",
        "dropdatabase",
        "createindexes",
        "dropindexes",
        "renamecollection",
        "collmod",
        "committransaction",
        "aborttransaction",
    }
)
# Commands mongod serves on a secondary only with secondaryOk (a read preference other than
# primary); with the default (primary) it answers NotPrimaryNoSecondaryOk.
READS = frozenset(
    {
        "find",
        "aggregate",
        "count",
        "distinct",
        "listcollections",
        "listindexes",
        "listdatabases",
        "dbstats",
        "collstats",
        "explain",
    }
)
NOT_WRITABLE_PRIMARY = (10107, "NotWritablePrimary", "not primary")
NOT_PRIMARY_NO_SECONDARY_OK = (
    13435,
    "NotPrimaryNoSecondaryOk",
    "not primary and secondaryOk=false",
)
INTERRUPTED = (11602, "InterruptedDueToReplStateChange", "operation was interrupted")
# What mongod adds to the reply of a write it applied but could not replicate as the write concern
# asks within wtimeout (src/mongo/base/error_codes.yml: 64, WriteConcernTimeout); the command itself
# succeeded (ok: 1, n: 1), and pymongo raises WriteConcernError.
WRITE_CONCERN_TIMEOUT = {
    "code": 64,
    "codeName": "WriteConcernTimeout",
    "errmsg": "waiting for replication timed out",
    "errInfo": {"wtimeout": True},
}


def _election_id(term: int) -> ObjectId:
    """mongod's electionId: OID::fromTerm, the max timestamp and the term, so it grows per term."""
    return ObjectId(bytes.fromhex("7fffffff") + term.to_bytes(8, "big"))


def _peer_closed(sock: socket.socket) -> bool:
    """True once the client has closed or reset its side (without reading what it sent)."""
    poller = select.poll()
    flags = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR
    poller.register(sock, flags)
    return any(events & flags for _, events in poller.poll(0))


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class ConnectionRecord:
    """One accepted TCP connection to a member, as the member saw it."""

    member: str
    number: int
    closed_at: float | None = None
    queued_seconds: float = 0.0
    admitted: bool = False  # given a token by the rate limiter (or no limiter)
    refused: bool = False  # closed by the rate limiter unserved: rejected, dropped or abandoned
    tls_version: str | None = None
    client: dict | None = None  # the handshake's client metadata (driver, application, env)
    first_command: str | None = None
    commands: collections.Counter = field(default_factory=collections.Counter)
    errors: collections.Counter = field(default_factory=collections.Counter)  # codes it answered
    op_codes: collections.Counter = field(default_factory=collections.Counter)  # 2013 OP_MSG

    @property
    def live(self) -> bool:
        return self.closed_at is None

    @property
    def kind(self) -> str | None:
        """What the connection is for, judged by what it sent: "monitor" while it sent only
        hello (pymongo's monitors poll with hello and nothing else), "pool" once it sent
        anything else (authentication, CRUD), None before its first command."""
        if not self.commands:
            return None
        return "monitor" if set(self.commands) <= HELLO else "pool"

    def saw(self, name: str, body: dict, op_code: int) -> None:
        self.op_codes[op_code] += 1
        if self.first_command is None:
            self.first_command = name
        if name in HELLO and self.client is None and isinstance(body.get("client"), dict):
            self.client = body["client"]
        self.commands[name] += 1


# ---------------------------------------------------------------------------------------------
# Wire messages


def _header(message: bytes) -> tuple[int, int, int, int]:
    return struct.unpack_from("<iiii", message)


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(16)
    (length,) = struct.unpack_from("<i", header)
    if not 16 <= length <= MAX_MESSAGE:
        raise ConnectionError(f"bad messageLength {length}")
    return header + await reader.readexactly(length - 16)


def _op_msg_body(message: bytes) -> tuple[int, dict, int]:
    """The flag bits, the body document and the body's offset of an OP_MSG."""
    (flags,) = struct.unpack_from("<I", message, 16)
    position, end = 20, len(message) - (4 if flags & CHECKSUM_PRESENT else 0)
    while position < end:
        kind = message[position]
        (size,) = struct.unpack_from("<i", message, position + 1)
        if kind == 0:
            start = position + 1
            return flags, bson.decode(message[start : start + size]), start
        position += 1 + size
    raise ValueError("OP_MSG without a body")


def _op_query(message: bytes) -> tuple[int, dict]:
    """The flags and the query document of an OP_QUERY ($query unwrapped)."""
    (flags,) = struct.unpack_from("<i", message, 16)
    start = message.index(b"\x00", 20) + 1 + 8
    (size,) = struct.unpack_from("<i", message, start)
    query = bson.decode(message[start : start + size])
    return flags, query.get("$query", query) if isinstance(query.get("$query"), dict) else query


_next_id = itertools.count(1).__next__  # requestIDs of the replies the facade writes itself


def _op_msg(document: bytes, response_to: int) -> bytes:
    payload = struct.pack("<I", 0) + b"\x00" + document
    return struct.pack("<iiii", 16 + len(payload), _next_id(), response_to, OP_MSG) + payload


def _op_reply(document: bytes, response_to: int) -> bytes:
    payload = struct.pack("<iqii", 0, 0, 0, 1) + document
    return struct.pack("<iiii", 16 + len(payload), _next_id(), response_to, OP_REPLY) + payload


def _reply(op_code: int, document: dict, response_to: int) -> bytes:
    encoded = bson.encode(document)
    if op_code == OP_QUERY:
        return _op_reply(encoded, response_to)
    return _op_msg(encoded, response_to)


def _error(error: tuple[int, str, str], retryable_write: bool) -> dict:
    code, code_name, message = error
    document = {"ok": 0.0, "errmsg": message, "code": code, "codeName": code_name}
    if retryable_write:
        document["errorLabels"] = ["RetryableWriteError"]
    return document


def _write_concern_timed_out(document: dict) -> None:
    if document.get("ok"):
        document["writeConcernError"] = dict(WRITE_CONCERN_TIMEOUT)


def _rewrite_reply(reply: bytes, change) -> bytes:
    """Apply change(document) to the first document of an OP_MSG or OP_REPLY; fix the length."""
    _, request_id, response_to, op_code = _header(reply)
    if op_code == OP_MSG:
        flags, document, start = _op_msg_body(reply)
        (size,) = struct.unpack_from("<i", reply, start)
        change(document)
        payload = reply[16 : start - 1] + b"\x00" + bson.encode(document) + reply[start + size :]
        if flags & CHECKSUM_PRESENT:
            raise ValueError("checksummed replies are not rewritten")
    elif op_code == OP_REPLY:
        (size,) = struct.unpack_from("<i", reply, 36)
        document = bson.decode(reply[36 : 36 + size])
        change(document)
        payload = reply[16:36] + bson.encode(document) + reply[36 + size :]
    else:
        return reply
    return struct.pack("<iiii", 16 + len(payload), request_id, response_to, op_code) + payload


@dataclass(frozen=True)
class _Request:
    op_code: int
    id: int
    body: dict
    name: str  # the command's name, lower case ("" for other opcodes)
    secondary_ok: bool  # a read preference other than primary (OP_MSG) or the OP_QUERY flag
    fire_and_forget: bool  # OP_MSG moreToCome: the client expects no reply (w:0)

    @classmethod
    def parse(cls, message: bytes) -> "_Request":
        _, request_id, _, op_code = _header(message)
        flags, body, secondary_ok = 0, {}, False
        if op_code == OP_MSG:
            flags, body, _ = _op_msg_body(message)
            read_preference = body.get("$readPreference") or {}
            secondary_ok = read_preference.get("mode", "primary") != "primary"
        elif op_code == OP_QUERY:
            query_flags, body = _op_query(message)
            secondary_ok = bool(query_flags & QUERY_SECONDARY_OK)
        name = next(iter(body), "").lower()
        fire_and_forget = op_code == OP_MSG and bool(flags & MORE_TO_COME)
        return cls(op_code, request_id, body, name, secondary_ok, fire_and_forget)


# ---------------------------------------------------------------------------------------------
# Members


class Member:
    """One replica-set member: a listening port in front of the shared backend."""

    def __init__(self, replica_set: "LocalReplicaSet", index: int, limiter: RateLimiter | None):
        self.index = index
        self.limiter = limiter
        self.connections: list[ConnectionRecord] = []
        self._set = replica_set
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._tasks: set[asyncio.Task] = set()
        self._transports: set = set()
        self._accepting: asyncio.Task | None = None
        self.hanging = False  # accept and read, answer nothing: a host cut off mid-conversation

    def __repr__(self) -> str:
        role = "primary" if self.is_primary else "secondary"
        return f"<Member {self.index} {self.address} {role}>"

    @property
    def is_primary(self) -> bool:
        return self._set.primary is self

    @property
    def connections_opened(self) -> int:
        return len(self.connections)

    @property
    def connections_live(self) -> int:
        return len(self.live())

    def live(self, kind: str | None = None) -> list[ConnectionRecord]:
        """The open connections, optionally only those of a kind ("monitor" or "pool")."""
        records = [record for record in list(self.connections) if record.live]
        return [record for record in records if kind is None or record.kind == kind]

    @property
    def queued(self) -> int:
        return self.limiter.queued if self.limiter else 0

    @property
    def abandoned(self) -> int:
        """Queued connections that their client closed first (its connect or TLS timeout): each
        lost its place, and its client will queue again at the back."""
        return self.limiter.abandoned if self.limiter else 0

    @property
    def wasted(self) -> int:
        """Admissions spent on clients already gone: admitted, then closed before any command."""
        return sum(
            1 for r in list(self.connections) if r.admitted and not r.live and not r.commands
        )

    @property
    def longest_queue_wait(self) -> float:
        return self.limiter.longest_wait if self.limiter else 0.0

    # The rest runs on the replica set's event loop.

    def start(self) -> None:
        self._accepting = asyncio.ensure_future(self._accept_forever())

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        self._listener.close()
        for transport in list(self._transports):
            transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(self._listener)
            task = asyncio.ensure_future(self._serve(sock))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, sock: socket.socket) -> None:
        record = ConnectionRecord(self.address, len(self.connections) + 1)
        self.connections.append(record)
        backend_writer = writer = None
        try:
            await self._while_hanging()
            # queued before the TLS handshake, where mongod's rate limiter holds a new session
            if self.limiter is not None and not await self._admit(record, sock):
                return
            record.admitted = True
            reader, writer = await self._open(sock)
            sock = None
            ssl_object = writer.get_extra_info("ssl_object")
            record.tls_version = ssl_object.version() if ssl_object else None
            host, port = self._set.backend_address
            backend_reader, backend_writer = await asyncio.open_connection(host, port)
            self._transports.add(backend_writer.transport)
            while True:
                message = await _read_message(reader)
                await self._while_hanging()
                if not await self._handle(message, record, writer, backend_reader, backend_writer):
                    return
        except (ConnectionError, OSError, EOFError, ssl.SSLError, ValueError):
            pass
        finally:
            record.closed_at = time.monotonic()
            if sock is not None:
                sock.close()
            for stream in (writer, backend_writer):
                if stream is not None:
                    self._transports.discard(stream.transport)
                    stream.transport.abort()

    async def _while_hanging(self) -> None:
        while self.hanging:
            await asyncio.sleep(0.05)

    async def _admit(self, record: ConnectionRecord, sock) -> bool:
        waited = await self.limiter.admit(lambda: _peer_closed(sock))
        if waited is None:
            record.refused = True
            return False
        record.queued_seconds = waited
        return True

    async def _open(self, sock: socket.socket):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**20)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.connect_accepted_socket(
            lambda: protocol, sock, ssl=self._set.server_context
        )
        self._transports.add(transport)
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    def _refusal(self, request: "_Request") -> tuple[int, str, str] | None:
        """The error mongod answers on a member that is not primary, or None to serve it."""
        if self.is_primary:
            return None
        if request.name in WRITES:
            return NOT_WRITABLE_PRIMARY
        if request.name in READS and not request.secondary_ok:
            return NOT_PRIMARY_NO_SECONDARY_OK
        return None

    async def _handle(self, message, record, writer, backend_reader, backend_writer) -> bool:
        """Serve one request; False to close the connection."""
        request = _Request.parse(message)
        if request.name:
            record.saw(request.name, request.body, request.op_code)
        retry_key = self._set.retry_key(request.body) if request.name in WRITES else None

        async def answer(reply: bytes) -> bool:
            writer.write(reply)
            await writer.drain()
            return True

        if request.name in HELLO:
            reply = await self._forward(message, backend_reader, backend_writer)
            describe = functools.partial(self._set.describe, self, request.name, record)
            return await answer(_rewrite_reply(reply, describe))
        if refusal := self._refusal(request):
            if request.fire_and_forget:
                return False  # mongod closes a connection whose unacknowledged write it refuses
            record.errors[refusal[0]] += 1
            error = _error(refusal, retryable_write=retry_key is not None)
            return await answer(_reply(request.op_code, error, request.id))
        if retry_key in self._set.applied_writes:  # a retry of a write already applied
            return await answer(_op_msg(self._set.applied_writes[retry_key], request.id))
        if request.fire_and_forget:
            backend_writer.write(message)
            await backend_writer.drain()
            return True

        term = self._set.term
        reply = await self._forward(message, backend_reader, backend_writer)
        if request.name not in WRITES:
            return await answer(reply)
        if retry_key is not None:
            self._set.remember(retry_key, reply)
        if self._set.write_concern_error:
            reply = _rewrite_reply(reply, _write_concern_timed_out)
        if self._set.write_latency:
            await asyncio.sleep(self._set.write_latency)
        if self.is_primary and self._set.term == term:
            return await answer(reply)
        # The primary stepped down while the write was in flight: mongod interrupts it.
        record.errors[INTERRUPTED[0]] += 1
        error = _error(INTERRUPTED, retryable_write=retry_key is not None)
        return await answer(_reply(request.op_code, error, request.id))

    async def _forward(self, message, backend_reader, backend_writer) -> bytes:
        """Send one request to the backend and return its reply (exhaust replies concatenated)."""
        backend_writer.write(message)
        await backend_writer.drain()
        replies = []
        while True:
            reply = await _read_message(backend_reader)
            replies.append(reply)
            if _header(reply)[3] != OP_MSG or not struct.unpack_from("<I", reply, 16)[0] & (
                MORE_TO_COME
            ):
                return b"".join(replies)


# ---------------------------------------------------------------------------------------------
# The replica set


class LocalReplicaSet(SignsInWithLogin):
    """Members in front of one mongoeco backend, with TLS, elections and a connection limiter."""

    embedded = True

    def __init__(
        self,
        login: Login | None = None,
        members: int = 3,
        tls: bool = True,
        new_connections_per_second: float | None = None,
        **limits,
    ) -> None:
        self.login = login or Login(users=(), uri_options="")
        self.term = 1
        self.applied_writes: dict[tuple, bytes] = {}
        self.write_latency = 0.0  # seconds a primary holds each write's reply (a slow write)
        self.write_concern_error = False  # a primary's writes applied but not acknowledged
        self._primary_index: int | None = 0
        self._elected = threading.Event()
        self._elected.set()
        self._election: asyncio.TimerHandle | None = None
        self._directory = Path(tempfile.mkdtemp(prefix="replica-set-"))
        self.ca_file: str | None = None
        self.server_context: ssl.SSLContext | None = None
        if tls:
            self.ca_file, self.server_context = self._certificates()
        self._loop = _Loop()
        self._backend = AsyncMongoEcoProxyServer(
            auth_users=self.login.users, host="127.0.0.1", port=0
        )
        address = self._loop.call(self._backend.start())
        self.backend_address = (address.host, address.port)

        def limiter() -> RateLimiter | None:
            if new_connections_per_second is None:
                return None
            return RateLimiter(new_connections_per_second, **limits)

        self.members = [Member(self, index, limiter()) for index in range(members)]
        self.hosts = [member.address for member in self.members]
        self._loop.call(self._start_members())
        options = f"replicaSet={SET_NAME}"
        if tls:
            options += f"&tls=true&tlsCAFile={self.ca_file}"
        if self.login.uri_options:
            options += f"&{self.login.uri_options}"
        self.uri = f"mongodb://{','.join(self.hosts)}/?{options}"
        backend = f"mongodb://{address.host}:{address.port}/?directConnection=true"
        self.backend_uri = "&".join(filter(None, (backend, self.login.uri_options)))

    def _certificates(self) -> tuple[str, ssl.SSLContext]:
        import trustme

        authority = trustme.CA(organization_name="replica-set test CA")
        certificate = authority.issue_cert("127.0.0.1", "localhost")
        ca_file = self._directory / "ca.pem"
        authority.cert_pem.write_to_path(str(ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        # No TLS 1.3 session tickets: asyncio holds back the tickets it writes after a handshake,
        # which stalled every new connection's first reply by about 40 ms here; pymongo does not
        # resume sessions, so a ticket would never be used anyway.
        context.num_tickets = 0
        return str(ca_file), context

    async def _start_members(self) -> None:
        for member in self.members:
            member.start()

    # -- topology

    @property
    def primary(self) -> Member | None:
        index = self._primary_index
        return None if index is None else self.members[index]

    @property
    def secondaries(self) -> list[Member]:
        return [member for member in self.members if member is not self.primary]

    def describe(self, member: Member, command: str, record, document: dict) -> None:
        """Turn the backend's standalone hello reply into this member's replica-set hello."""
        primary = self.primary
        is_primary = member is primary
        document.pop("isWritablePrimary", None)
        document.pop("ismaster", None)
        document.pop("topologyVersion", None)  # no streaming hello: see the module docstring
        document[("isWritablePrimary" if command == "hello" else "ismaster")] = is_primary
        document["secondary"] = not is_primary
        document["setName"] = SET_NAME
        document["setVersion"] = 1
        document["hosts"] = list(self.hosts)
        document["me"] = member.address
        if primary is not None:
            document["primary"] = primary.address
        else:
            document.pop("primary", None)
        if is_primary:
            document["electionId"] = _election_id(self.term)
        else:
            document.pop("electionId", None)
        document["connectionId"] = record.number

    def step_down(self, election_seconds: float = 2.0) -> Member:
        """Step the primary down now; return the member that will be elected after the wait."""
        old = self._primary_index
        if old is None:
            raise RuntimeError("no primary to step down (an election is under way)")
        elected = (old + 1) % len(self.members)
        self._elected.clear()

        async def step_down() -> None:
            self._primary_index = None
            self._election = asyncio.get_running_loop().call_later(
                election_seconds, self._elect, elected
            )

        self._loop.call(step_down())
        return self.members[elected]

    def _elect(self, index: int) -> None:
        self.term += 1
        self._primary_index = index
        self._election = None
        self._elected.set()

    def wait_for_primary(self, timeout: float = 30) -> Member:
        if not self._elected.wait(timeout):
            raise TimeoutError(f"no primary elected within {timeout} s")
        return self.primary

    def remember(self, key: tuple, reply: bytes) -> None:
        """Keep an applied retryable write's reply, for its retries (mongod's transaction table)."""
        if _header(reply)[3] != OP_MSG:
            return
        _, document, start = _op_msg_body(reply)
        if document.get("ok"):
            (size,) = struct.unpack_from("<i", reply, start)
            self.applied_writes[key] = reply[start : start + size]

    @staticmethod
    def retry_key(body: dict) -> tuple | None:
        """(lsid, txnNumber) of a retryable write, the key mongod dedupes its retries by."""
        lsid, number = body.get("lsid"), body.get("txnNumber")
        if not isinstance(lsid, dict) or number is None or "autocommit" in body:
            return None
        return bytes(lsid.get("id", b"")), int(number)

    # -- figures

    def connections(self) -> list[ConnectionRecord]:
        return [record for member in self.members for record in list(member.connections)]

    def tls_versions(self) -> collections.Counter:
        """How many accepted connections negotiated each TLS version (None: no TLS, or dropped
        before its handshake)."""
        return collections.Counter(record.tls_version for record in self.connections())

    def backend_client(self, **options) -> MongoClient:
        """A client straight to the shared data (no facade, no TLS), e.g. to count documents."""
        return MongoClient(self.backend_uri, **self.login.admin_options, **options)

    def close(self) -> None:
        async def stop() -> None:
            if self._election is not None:
                self._election.cancel()
            for member in self.members:
                await member.stop()
            await self._backend.close()

        self._loop.call(stop())
        self._loop.close()
        shutil.rmtree(self._directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# MONGODB_TEST_URI


class ExternalMember(ServerStatusConnections):
    """A member of a real replica set; figures from its serverStatus (everyone's connections)."""

    def __init__(self, address: str, client: MongoClient) -> None:
        self.address = address
        self._admin = client

    @property
    def is_primary(self) -> bool:
        return bool(self._admin.admin.command("hello").get("isWritablePrimary"))


class ExternalReplicaSet:
    """MONGODB_TEST_URI's replica set: per-member serverStatus figures, no faults."""

    embedded = False
    ca_file = None

    def __init__(self, uri: str) -> None:
        parsed = uri_parser.parse_uri(uri)
        given = {name.lower(): value for name, value in parsed["options"].items()}
        self.is_replica_set = bool(given.get("replicaset"))
        self.login = external_login(uri)
        self.username, self.password = parsed["username"], parsed["password"]
        self.uri = USERINFO.sub(r"\1", uri)
        self._full_uri = uri
        options = {
            name: value
            for name, value in given.items()
            if name not in ("replicaset", "directconnection", "srvmaxhosts", "srvservicename")
        }
        if parsed["username"]:
            options |= {"username": parsed["username"], "password": parsed["password"]}
        options |= {"appname": "test-connection-counter", "serverMonitoringMode": "poll"}
        self._clients = [
            MongoClient(host, port, directConnection=True, **options)
            for host, port in parsed["nodelist"]
        ]
        self.members = [
            ExternalMember(f"{host}:{port}", client)
            for (host, port), client in zip(parsed["nodelist"], self._clients, strict=True)
        ]

    @property
    def primary(self) -> ExternalMember | None:
        return next((member for member in self.members if member.is_primary), None)

    @property
    def secondaries(self) -> list[ExternalMember]:
        return [member for member in self.members if not member.is_primary]

    def backend_client(self, **options) -> MongoClient:
        return MongoClient(self._full_uri, **options)

    def _unsupported(self, *args, **kwargs):
        raise FaultsUnsupported("needs the local replica set (unset MONGODB_TEST_URI)")

    step_down = wait_for_primary = tls_versions = connections = _unsupported

    def close(self) -> None:
        for client in self._clients:
            client.close()


def start_replica_set(
    login: Login | None = None, **options
) -> LocalReplicaSet | ExternalReplicaSet:
    """MONGODB_TEST_URI's deployment when that is set (nothing is started), else a local one whose
    users are the login's (options: LocalReplicaSet's)."""
    uri = os.environ.get("MONGODB_TEST_URI")
    if uri:
        return ExternalReplicaSet(uri)
    return LocalReplicaSet(login, **options)
