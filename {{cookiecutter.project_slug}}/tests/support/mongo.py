"""A MongoDB server for tests, with server-side connection counting and fault injection.

    server = start_mongo(scram=True)    # MONGODB_TEST_URI if set, else an embedded server
    server.uri                          # no credentials in it; for SCRAM authSource=admin and
                                        # no mechanism: the driver negotiates, as deployed
    server.username, server.password    # None without SCRAM
    server.connections_opened           # connections the server accepted so far
    server.connections_live             # connections open right now
    server.stop(); server.start()       # drop every connection and refuse new ones; then
                                        # listen again on the same port (data is kept)
    server.hang(); server.resume()      # accept connections but never answer; then answer again
    server.close()

The embedded server is mongoeco's wire server on 127.0.0.1 behind a small counting TCP front:
the front is what clients connect to, so counting and faults are exact and the data survives a
stop/start. mongoeco's own serverStatus connection figures are fixed numbers, so they are not
used. Its SCRAM user has the mechanisms Atlas offers on this project's tier (atlas_tier.json:
SCRAM-SHA-1 only on M0 and Flex), and the server tells the driver which, in the handshake's
saslSupportedMechs as mongod does, so the driver negotiates here what it will on Atlas.

With MONGODB_TEST_URI (a local mongod, Atlas) the figures come from serverStatus
(connections.totalCreated and connections.current, which include this wrapper's own client),
and the fault methods raise FaultsUnsupported.
"""

import asyncio
import hashlib
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mongoeco.wire import AsyncMongoEcoProxyServer, WireAuthUser
from mongoeco.wire.handshake import WireHandshakeService
from pymongo import MongoClient, uri_parser

# the limits Atlas sets on this project's tier (cookiecutter.json's _atlas_tiers row)
TIER = json.loads((Path(__file__).with_name("atlas_tier.json")).read_text(encoding="utf-8"))
SCRAM_OPTIONS = "authSource=admin"  # as in template.yaml: no authMechanism, the driver negotiates
USERINFO = re.compile(r"^(mongodb(?:\+srv)?://)[^@/]*@")

# "admin.<user>" -> that user's mechanisms, for every embedded server of this process
_MECHANISMS: dict[str, tuple[str, ...]] = {}
_build_hello = WireHandshakeService.build_hello_response


def _hello_naming_the_users_mechanisms(self, *, command_name, body, connection):
    """mongod answers a handshake that asks saslSupportedMechs=<db>.<user> with that user's SCRAM
    mechanisms; mongoeco does not, so the driver would always fall back to SCRAM-SHA-1."""
    response = _build_hello(self, command_name=command_name, body=body, connection=connection)
    asked = body.get("saslSupportedMechs")
    if isinstance(asked, str) and asked in _MECHANISMS:
        response["saslSupportedMechs"] = list(_MECHANISMS[asked])
    return response


WireHandshakeService.build_hello_response = _hello_naming_the_users_mechanisms


@dataclass(frozen=True)
class ScramUser:
    """The database user of an embedded server: a name of its own (so each server's user can
    offer its own mechanisms), a random password, and the mechanisms of this project's tier."""

    username: str
    password: str = field(repr=False)
    mechanisms: tuple[str, ...]

    @classmethod
    def create(cls, mechanisms: tuple[str, ...] | None = None) -> "ScramUser":
        user = cls(
            username=f"app_{secrets.token_hex(4)}",
            password=secrets.token_urlsafe(16),
            mechanisms=tuple(mechanisms or TIER["scram_mechanisms"]),
        )
        _MECHANISMS[f"admin.{user.username}"] = user.mechanisms
        return user

    def wire_user(self) -> WireAuthUser:
        """mongoeco's user, holding what mongoeco needs to verify logins as mongod does.

        For SCRAM-SHA-1, MongoDB (and so the driver) feeds PBKDF2 the digest
        md5("user:mongo:password"), not the password; mongoeco feeds it what it holds. So a user
        offering SCRAM-SHA-1 only (M0, Flex) holds that digest. A user offering both mechanisms
        holds the password: the driver negotiates SCRAM-SHA-256, as on Atlas's dedicated tiers."""
        secret = self.password
        if self.mechanisms == ("SCRAM-SHA-1",):
            text = f"{self.username}:mongo:{self.password}".encode()
            secret = hashlib.md5(text, usedforsecurity=False).hexdigest()
        return WireAuthUser(self.username, secret, "admin", self.mechanisms)


class FaultsUnsupported(RuntimeError):
    """Raised by stop/start/hang/resume on a server these tests do not control."""


class _Loop:
    """An asyncio event loop running in a daemon thread; call() runs a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coroutine, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class EmbeddedMongo:
    """mongoeco's wire server behind a counting TCP front that tests can stop, start and hang."""

    embedded = True

    def __init__(self, scram: bool = False, mechanisms: tuple[str, ...] | None = None) -> None:
        user = ScramUser.create(mechanisms) if scram else None
        self.username = user.username if user else None
        self.password = user.password if user else None
        self.mechanisms = user.mechanisms if user else ()
        users = (user.wire_user(),) if user else ()
        self.connections_opened = 0
        self._pipes: set[asyncio.StreamWriter] = set()
        self._hanging = False
        self._front: asyncio.Server | None = None
        self._loop = _Loop()
        self._backend = AsyncMongoEcoProxyServer(auth_users=users, host="127.0.0.1", port=0)
        self._backend_address = self._loop.call(self._backend.start())
        self.port = 0
        self.start()
        options = f"directConnection=true&{SCRAM_OPTIONS}" if scram else "directConnection=true"
        self.uri = f"mongodb://127.0.0.1:{self.port}/?{options}"

    @property
    def connections_live(self) -> int:
        return len(self._pipes)

    def start(self) -> None:
        """Listen again (on the same port after the first start)."""
        if self._front is None:
            self._front = self._loop.call(
                asyncio.start_server(self._accept, "127.0.0.1", self.port)
            )
            self.port = self._front.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close the listener and drop every open connection, as a crashed server would."""
        front, self._front = self._front, None
        if front is not None:
            self._loop.call(self._stop(front))

    def hang(self) -> None:
        """Keep accepting connections and reading requests, but never answer any of them."""
        self._hanging = True

    def resume(self) -> None:
        self._hanging = False

    def close(self) -> None:
        self.stop()
        self._loop.call(self._backend.close())
        self._loop.close()

    async def _stop(self, front: asyncio.Server) -> None:
        front.close()
        for writer in list(self._pipes):
            writer.transport.abort()
        await front.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_opened += 1
        self._pipes.add(writer)
        backend_writer = None
        try:
            host, port = self._backend_address.host, self._backend_address.port
            backend_reader, backend_writer = await asyncio.open_connection(host, port)
            await asyncio.gather(
                self._pump(reader, backend_writer, upstream=True),
                self._pump(backend_reader, writer, upstream=False),
            )
        except (ConnectionError, OSError):
            pass
        finally:
            self._pipes.discard(writer)
            writer.transport.abort()
            if backend_writer is not None:
                backend_writer.transport.abort()

    async def _pump(self, reader, writer, *, upstream: bool) -> None:
        try:
            while data := await reader.read(65536):
                if upstream and self._hanging:
                    continue
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


class ServerStatusConnections:
    """Connection figures of a server this process does not run, from its serverStatus
    (connections.totalCreated and current: everyone's connections, this counter's own included).
    The class using it sets self._admin, a MongoClient to that server."""

    _admin: MongoClient

    def _connections(self) -> dict:
        return self._admin.admin.command("serverStatus")["connections"]

    @property
    def connections_opened(self) -> int:
        return self._connections()["totalCreated"]

    @property
    def connections_live(self) -> int:
        return self._connections()["current"]


class ExternalMongo(ServerStatusConnections):
    """A server given by MONGODB_TEST_URI; counts come from serverStatus, faults are unsupported.

    For SCRAM the user and password are taken out of the URI (they go into the secret);
    otherwise the URI is used as given (for example MONGODB-AWS against Atlas).
    """

    embedded = False

    def __init__(self, uri: str, scram: bool = False) -> None:
        parsed = uri_parser.parse_uri(uri)
        self.username = parsed["username"] if scram else None
        self.password = parsed["password"] if scram else None
        self.uri = USERINFO.sub(r"\1", uri) if scram else uri
        self._admin = MongoClient(uri, appname="test-connection-counter")

    def _unsupported(self) -> None:
        raise FaultsUnsupported("faults need the embedded server (unset MONGODB_TEST_URI)")

    stop = start = hang = resume = _unsupported

    def close(self) -> None:
        self._admin.close()


def start_mongo(scram: bool = False) -> EmbeddedMongo | ExternalMongo:
    """Return MONGODB_TEST_URI's server when that is set, otherwise start an embedded one."""
    uri = os.environ.get("MONGODB_TEST_URI")
    return ExternalMongo(uri, scram) if uri else EmbeddedMongo(scram=scram)
