"""A MongoDB server for tests, with server-side connection counting and fault injection.

    server = start_mongo(local_auth.login())  # MONGODB_TEST_URI if set, else an embedded server
    server.uri                          # no credentials in it; the auth options the function's
                                        # URI has (tests/support/auth.py's login says which)
    server.login                        # who may sign in, and how (Login, below)
    server.username, server.password    # the function's, where the auth mode has them
    server.admin_client()               # a client of the tests' own, signed in
    server.connections_opened           # connections the server accepted so far
    server.connections_live             # connections open right now
    server.stop(); server.start()       # drop every connection and refuse new ones; then
                                        # listen again on the same port (data is kept)
    server.hang(); server.resume()      # accept connections but never answer; then answer again
    server.close()

The embedded server is mongoeco's wire server on 127.0.0.1 behind a small counting TCP front:
the front is what clients connect to, so counting and faults are exact and the data survives a
stop/start. mongoeco's own serverStatus connection figures are fixed numbers, so they are not
used. Who may sign in is the auth mode's business (tests/support/auth.py makes the Login): the
server holds those users and refuses everything else, as Atlas does.

With MONGODB_TEST_URI (a local mongod, Atlas) the figures come from serverStatus
(connections.totalCreated and connections.current, which include this wrapper's own client),
and the fault methods raise FaultsUnsupported. A user and password in that URI are taken out of
it; the auth mode hands them to the function its own way (tests/support/auth.py).
"""

import asyncio
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mongoeco.wire import AsyncMongoEcoProxyServer, WireAuthUser
from pymongo import MongoClient, uri_parser

# the limits Atlas sets on this project's tier (cookiecutter.json's _atlas_tiers row)
TIER = json.loads((Path(__file__).with_name("atlas_tier.json")).read_text(encoding="utf-8"))
USERINFO = re.compile(r"^(mongodb(?:\+srv)?://)[^@/]*@")


@dataclass(frozen=True)
class Login:
    """Who a local server lets in, and how clients sign in to it; each auth mode's
    tests/support/auth.py makes one (LocalAuth.login())."""

    users: tuple[WireAuthUser, ...]  # what the server holds
    uri_options: str  # the auth options of the function's URI, as template.yaml has them
    # what a client built like the function's passes to MongoClient besides the URI
    function_options: dict = field(default_factory=dict, repr=False)
    # what the tests' own clients pass, to count or read what the function stored
    admin_options: dict = field(default_factory=dict, repr=False)


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


class SignsInWithLogin:
    """username and password: what the function signs in with on a local deployment, from its
    login (None where the auth mode has none)."""

    login: Login

    @property
    def username(self) -> str | None:
        return self.login.function_options.get("username")

    @property
    def password(self) -> str | None:
        return self.login.function_options.get("password")


class EmbeddedMongo(SignsInWithLogin):
    """mongoeco's wire server behind a counting TCP front that tests can stop, start and hang."""

    embedded = True

    def __init__(self, login: Login | None = None) -> None:
        self.login = login or Login(users=(), uri_options="")
        self.connections_opened = 0
        self._pipes: set[asyncio.StreamWriter] = set()
        self._hanging = False
        self._front: asyncio.Server | None = None
        self._loop = _Loop()
        self._backend = AsyncMongoEcoProxyServer(
            auth_users=self.login.users, host="127.0.0.1", port=0
        )
        self._backend_address = self._loop.call(self._backend.start())
        self.port = 0
        self.start()
        options = "&".join(filter(None, ("directConnection=true", self.login.uri_options)))
        self.uri = f"mongodb://127.0.0.1:{self.port}/?{options}"

    def admin_client(self, **options) -> MongoClient:
        """A client of the tests' own, through the counting front (its connections count too)."""
        return MongoClient(self.uri, **self.login.admin_options, **options)

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


def external_login(uri: str) -> Login:
    """MONGODB_TEST_URI's user, where the URI names one (the function and the tests sign in as
    it); with none, the credentials are the environment's."""
    parsed = uri_parser.parse_uri(uri)
    credentials = {}
    if parsed["username"]:
        credentials = {"username": parsed["username"], "password": parsed["password"]}
    return Login((), "", credentials, credentials)


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

    A user and password in the URI are taken out of it (tests/support/auth.py hands them to the
    function); without them, the credentials come from the environment.
    """

    embedded = False

    def __init__(self, uri: str) -> None:
        parsed = uri_parser.parse_uri(uri)
        self.login = external_login(uri)
        self.username, self.password = parsed["username"], parsed["password"]
        self.uri = USERINFO.sub(r"\1", uri)
        self._full_uri = uri
        self._admin = MongoClient(uri, appname="test-connection-counter")

    def admin_client(self, **options) -> MongoClient:
        return MongoClient(self._full_uri, **options)

    def _unsupported(self) -> None:
        raise FaultsUnsupported("faults need the embedded server (unset MONGODB_TEST_URI)")

    stop = start = hang = resume = _unsupported

    def close(self) -> None:
        self._admin.close()


def start_mongo(login: Login | None = None) -> EmbeddedMongo | ExternalMongo:
    """Return MONGODB_TEST_URI's server when that is set, otherwise start an embedded one whose
    users are the login's."""
    uri = os.environ.get("MONGODB_TEST_URI")
    return ExternalMongo(uri) if uri else EmbeddedMongo(login)
