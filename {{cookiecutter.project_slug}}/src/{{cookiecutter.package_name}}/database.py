"""The one MongoClient of this execution environment, built on first use and reused after.

Lambda runs one invocation at a time per environment and freezes it between invocations, so a
single client with a tiny pool serves every invocation; the handler never closes it. The URI is
used exactly as given; how the client authenticates is auth.py's business, one module per auth
mode chosen at generation: auth.credentials() gives the MongoClient arguments (none, where the
driver finds the credentials itself, or a user and password), auth.renewed(), after the database
refused a login, says whether there are other credentials now (a rotated secret: worth a new
client), and auth.ERRORS are the errors besides the driver's that mean "unavailable".

run() sorts the failures: a document the server will not store (REFUSED_DOCUMENT_CODES) is
DocumentRefused, the request's fault; a connection string pymongo refuses once DNS has added the
host's TXT options is config.ConfigurationError, the deployment's fault; everything else means the
database cannot serve now and is Unavailable. Two states of the environment shape what run() does
before it touches the database: a refused login it is backing off from (AUTH_BACKOFF_SECONDS), and
connections that sat idle longer than the network path keeps a flow (Settings.idle_refresh_seconds).
"""

import threading
import time
from collections.abc import Callable

import pymongo
from pymongo import MongoClient, uri_parser
from pymongo.collection import Collection
from pymongo.errors import (
    AutoReconnect,
    ExecutionTimeout,
    InvalidURI,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteConcernError,
    WriteError,
)

from . import auth
from .config import ConfigurationError, Settings
from .logs import logger
from .observability import connections

# Applied unless the URI sets them (a URI option always wins over these defaults).
# Every request runs under pymongo.timeout (routes.py), and within it pymongo bounds server
# selection and the request's own connection by the time left, not by serverSelectionTimeoutMS or
# connectTimeoutMS (tests/test_topology.py measures it). connectTimeoutMS bounds the monitors'
# connections and checks: template.yaml's URI sets it from the connection budget (the request's
# window on tiers that queue new connections), so it is not defaulted here.
URI_DEFAULTS = {
    "maxIdleTimeMS": 60_000,  # drop pooled connections idle for a minute, as frozen ones will be
    "maxPoolSize": 2,  # one invocation at a time per environment; template.yaml's URI says 1
    "serverSelectionTimeoutMS": 5_000,  # selection outside pymongo.timeout (none here does that)
    # How often each monitor checks its member. A primary that hangs without refusing is left
    # once a monitor of another member reports the new one at its next check, or once the hung
    # one's own check times out after connectTimeoutMS, whichever comes first: half the driver's
    # 10 s keeps that wait short when connectTimeoutMS is long (tests/test_topology.py measures
    # both). A check is one hello on a connection the monitor already holds.
    "heartbeatFrequencyMS": 5_000,
}

# How long an environment whose login the database refused answers 503 without trying again (no
# connection, no secret read). Without it every request of every environment would open a
# connection and run a login that fails the same way, and at the API's rate that is thousands a
# second against a cluster that on M10 and M20 admits 15 new connections a second per node
# (README.md, "Connection budget"). With it each environment tries once per back-off: at the
# reserved concurrency M10 gets by default (81), about 8 new connections a second across the
# function, inside its share of the rate (80% of 15). A rotated secret is picked up by the first
# request after the back-off; the clock is the wall clock, which runs while Lambda freezes us.
AUTH_BACKOFF_SECONDS = 10.0

# The time an idle client is given to close: none to spare for endSessions. close() first ends
# the client's server sessions, over a pooled connection the network path has probably dropped, or
# a new one it would open for the purpose (the server drops idle sessions itself after 30 minutes,
# localLogicalSessionTimeoutMinutes). With its time already spent pymongo gives up on that before
# connecting or sending, and ignores the error, as the sessions specification says it must; closing
# the pools and stopping the monitors takes no network time. (Had the old pool no connection left,
# the connection it starts and abandons before connecting would count in MongoConnectionsCreated.)
CLOSE_WITHOUT_GOODBYE_SECONDS = 1e-9

# Lambda's initialisation phase is limited (10 s for on-demand environments): keep an early
# connection well inside it.
EARLY_CONNECT_SECONDS = 5.0

# How long reset() waits for the closed client's background threads to end.
RESET_THREADS_SECONDS = 2.0


# What a mongod answers when it will not store a document for what the document holds (names from
# src/mongo/base/error_codes.yml in mongodb/mongo; where each comes from, per code), and what each
# means in general. documents.py checks the documented limits before sending, so these are what
# only the server knows: its validator, its indexes, its own limits. The 400 answer gives the name,
# the code and this reason, never the server's errmsg: that quotes the document's values
# ("dup key: { email: ... }") and names the database, collection and index.
REFUSED_DOCUMENT_CODES = {
    # src/mongo/db/ops/insert.cpp: "object to insert too large", two _id fields
    2: ("BadValue", "the server does not accept a value or field of it as stored"),
    # insert.cpp validateDepth: more levels of nesting than the server stores
    15: ("Overflow", "it is nested more deeply than the server stores"),
    # BSON the server cannot read (the test server: a document too deep)
    22: ("InvalidBSON", "the server cannot read it as a BSON document"),
    # src/mongo/db/update/storage_validation.cpp
    52: ("DollarPrefixedFieldName", "a field name starting with $ is not allowed where it is"),
    # storage_validation.cpp storageValidIdField: an _id of a refused type
    53: ("InvalidIdField", "its _id is of a type the server does not store"),
    # storage_validation.cpp: $ref, $id, $db out of order or of a wrong type
    55: ("InvalidDBRef", "its $ref, $id or $db fields are out of order or of the wrong type"),
    # error_codes.yml: "only for the document validator"
    121: ("DocumentValidationFailure", "the collection's validator rejects it"),
    # a compound index over two arrays of the document
    171: ("CannotIndexParallelArrays", "a compound index covers two of its arrays"),
    # the document, with what the server adds, over the BSON limit
    10334: ("BSONObjectTooLarge", "with what the server adds, it is larger than BSON allows"),
    # a value a unique index of the collection already holds; the reason names the key's fields
    11000: ("DuplicateKey", "another document has the same value of a unique index's key"),
}
# A server reports a refused document as a write error, the verdict on that one document; as an
# error of the whole command, only these two speak of the document rather than of the command's
# options or the server's state (a BadValue there is more likely a setting than the body).
_REFUSED_COMMAND_CODES = {22, 10334}

# What a server answers to a login it refuses, whatever the mechanism (error_codes.yml).
AUTHENTICATION_FAILED = 18

_client: MongoClient | None = None
_items: Collection | None = None  # of _client (items())
# Wall-clock time (time.time()) the database was last used, and until when a refused login is
# answered without trying again, with the refusal: an environment's own state, as the client is.
# pymongo times idle connections on the monotonic clock, which reportedly stops while Lambda has
# the environment frozen, so it cannot tell how long the connections really sat idle.
_used_at: float | None = None
_refused_until = 0.0
_refused_login: OperationFailure | None = None


class Unavailable(Exception):
    """The database (or its credentials) could not be reached, or answered too slowly."""

    @property
    def cause(self) -> str:
        """What made it so, in one word for the log (README.md, "Metrics and alarms")."""
        error = self.__cause__
        if error is None:
            return "deadline"  # no time was left to try
        if isinstance(error, PyMongoError) and error.has_error_label("SystemOverloadedError"):
            return "overloaded"  # the cluster closed or refused new connections
        if isinstance(error, ServerSelectionTimeoutError):
            return "no_server"  # no usable server before the deadline
        if isinstance(error, NetworkTimeout | ExecutionTimeout):
            return "timeout"  # a server took too long to answer
        if isinstance(error, auth.ERRORS):
            return "authentication"  # the credentials could not be read
        if isinstance(error, OperationFailure) and _login_refused(error):
            return "authentication"  # the database refused them
        return "error"

    @property
    def nothing_sent(self) -> bool:
        """True when the operation surely never reached a server: no time was left to try, no
        server was selected, or the credentials could not be read or were refused. Anything else
        (a timeout, a lost connection, a write concern error) may come after a write was applied,
        so its outcome is unknown. pymongo raises a retry's ServerSelectionTimeoutError only when
        no earlier attempt was sent; otherwise it raises that attempt's error
        (pymongo/synchronous/mongo_client.py, _ClientConnectionRetryable.run)."""
        return self.cause in ("deadline", "no_server", "authentication")


class DocumentRefused(Exception):
    """The server will not store the document the operation sent. The message says why in
    general terms, without a value of the document: it is the 400 answer, and what a trace or a
    log could record of the error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _options(settings: Settings) -> dict:
    in_uri = uri_parser.split_options(settings.mongodb_uri.partition("?")[2], validate=False)
    options = {name: value for name, value in URI_DEFAULTS.items() if name not in in_uri}
    options["appname"] = settings.function_name  # names the function in Atlas logs and metrics
    options["retryWrites"] = True  # one transparent retry after a failover or dropped socket
    options["retryReads"] = True  # the same for reads
    return options


def _build(settings: Settings) -> MongoClient:
    options = _options(settings)
    logger.info("Creating the MongoClient", extra={"client_options": options})
    return MongoClient(
        settings.mongodb_uri,
        **auth.credentials(),
        **options,
        event_listeners=[connections],  # counts the connections the pool opens (observability.py)
    )


def client(settings: Settings) -> MongoClient:
    """Return this environment's MongoClient, creating it on the first call."""
    global _client
    if _client is None:
        _client = _build(settings)
    return _client


def connect_early(settings: Settings, seconds: float = EARLY_CONNECT_SECONDS) -> None:
    """Build the client and open its connections now (a ping), within `seconds`. For an
    environment initialised ahead of traffic; if the database does not answer in time the
    environment starts anyway, and its first request connects as any cold one does."""
    global _used_at
    try:
        with pymongo.timeout(seconds):
            client(settings).admin.command("ping")
            _used_at = time.time()
    except PyMongoError as error:
        logger.warning(
            "Could not connect during initialisation", extra={"error": type(error).__name__}
        )


def reset() -> None:
    """Forget everything this environment holds of the database: close the client (its pooled
    connections, its monitors, its logical sessions) and wait for its monitor threads to end, and
    clear the idle clock and any login back-off. For a SnapStart project's before-snapshot hook:
    whatever is left here is restored into every environment made from the snapshot, and a
    session id shared by two environments lets the server take one's write for a retry of the
    other's. The next call to client() builds a new one."""
    global _client, _items, _used_at, _refused_until, _refused_login
    old, _client, _items = _client, None, None
    _used_at, _refused_until, _refused_login = None, 0.0, None
    if old is None:
        return
    old.close()
    # close() tells pymongo's background threads (all named pymongo_...) to stop; each notices
    # within its short sleep (minHeartbeatFrequencyMS, 500 ms). Wait for them, so none is in the
    # snapshot half-way through a check.
    deadline = time.monotonic() + RESET_THREADS_SECONDS
    for thread in threading.enumerate():
        if thread.name.startswith("pymongo_"):
            thread.join(max(0.0, deadline - time.monotonic()))


def items(settings: Settings) -> Collection:
    """The items collection of this environment's client. pymongo builds a new Database and
    Collection object on every lookup (about 30 µs of CPU, a tenth of what a warm request costs
    beyond the database call), so it is looked up once per client."""
    global _items
    current = client(settings)
    if (
        _items is None
        or _items.database.client is not current
        or _items.database.name != settings.database
    ):
        _items = current[settings.database]["items"]
    return _items


def ping(items: Collection) -> None:
    """The database's ping, sent once more after a network error: pymongo retries reads and
    writes once but not a command, and a connection the network path dropped fails on first use
    (README.md, "Idle connections"). Not after a timeout: the deadline is what ran out."""
    try:
        items.database.command("ping")
    except AutoReconnect as error:
        if error.timeout:
            raise
        items.database.command("ping")


def run[T](settings: Settings, operation: Callable[[Collection], T]) -> T:
    """Run operation on the items collection, turning failures into DocumentRefused or
    Unavailable. When the database refuses the login, read the credentials again: a client with
    the new ones (a rotated password) retries once; the same ones would be refused again, so the
    environment backs off (AUTH_BACKOFF_SECONDS). Connections idle longer than the network path
    keeps a flow are replaced before the operation."""
    global _used_at
    if time.time() < _refused_until:
        raise Unavailable("backing off after a refused login") from _refused_login
    try:
        _refresh_if_idle(settings)
        try:
            return _with_renewed_credentials(settings, operation)
        finally:
            _used_at = time.time()
    except OperationFailure as error:
        if _refused_document(error):
            # from None: the driver's error, whose message quotes the document, goes no further
            raise DocumentRefused(error.code, _refusal(error)) from None
        if _login_refused(error):
            _back_off(error)
        raise Unavailable(error) from error
    except InvalidURI as error:
        # pymongo resolves a mongodb+srv:// host on first use and refuses the URI then if the TXT
        # record adds what it contradicts (loadBalanced=true to srvMaxHosts): never an outage, and
        # the same for every request until MONGODB_URI or the record changes (config.mongodb_uri
        # checked the rest at start-up)
        raise ConfigurationError(
            f"MONGODB_URI is not a connection string pymongo accepts with the options its host's "
            f"DNS TXT record adds: {error}"
        ) from error
    except (PyMongoError, *auth.ERRORS) as error:
        raise Unavailable(error) from error


def _with_renewed_credentials[T](settings: Settings, operation: Callable[[Collection], T]) -> T:
    try:
        return operation(items(settings))
    except OperationFailure as error:
        # a refusal first: the server's message quotes the document, which may say anything
        if _refused_document(error) or not _login_refused(error):
            raise
        refusal = error
    try:
        renewed = auth.renewed()
    except auth.ERRORS:
        _back_off(refusal)  # the credentials cannot be read again either: wait as for a refusal
        raise
    if not renewed:
        raise refusal
    _reconnect_with_fresh_credentials(settings)
    return operation(items(settings))


def _login_refused(error: OperationFailure) -> bool:
    """Whether the database refused the login (in any auth mode: code 18, AuthenticationFailed)."""
    # Some wire-compatible servers (the test server) send the message without the code.
    return error.code == AUTHENTICATION_FAILED or "Authentication failed" in str(error)


def _back_off(error: OperationFailure) -> None:
    """Answer 503 without touching the database or the credentials for AUTH_BACKOFF_SECONDS."""
    global _refused_until, _refused_login
    _refused_until, _refused_login = time.time() + AUTH_BACKOFF_SECONDS, error
    logger.warning(
        "The database refused the login; answering 503 without trying again for a while",
        extra={"cause": "authentication", "retry_in_seconds": AUTH_BACKOFF_SECONDS},
    )


def _refresh_if_idle(settings: Settings) -> None:
    """Replace the client when its connections sat idle longer than the network path keeps a
    flow (a NAT gateway or Atlas's private endpoint answers the next packet with a reset): a new
    client opens new connections, with the credentials already read."""
    global _client
    if _client is None or _used_at is None:
        return
    idle = time.time() - _used_at
    if idle <= settings.idle_refresh_seconds:
        return
    logger.info("Opening new connections after an idle period", extra={"idle_seconds": round(idle)})
    old, _client = _client, _build(settings)
    with pymongo.timeout(CLOSE_WITHOUT_GOODBYE_SECONDS):
        old.close()


def _refused_document(error: OperationFailure) -> bool:
    if isinstance(error, WriteError):
        return error.code in REFUSED_DOCUMENT_CODES
    # A write concern error comes after the write itself succeeded: replication, not the document.
    return error.code in _REFUSED_COMMAND_CODES and not isinstance(error, WriteConcernError)


def _refusal(error: OperationFailure) -> str:
    """Why the server refused the document, from its code alone, and for a duplicate key the
    key's field names: the server reports them as keyPattern and keyValue beside its errmsg
    (mongodb/mongo src/mongo/db/storage/duplicate_key_error_info.cpp); the names are taken, the
    values are not."""
    name, reason = REFUSED_DOCUMENT_CODES[error.code]
    details = error.details or {}
    key = details.get("keyPattern") or details.get("keyValue")
    if error.code == 11000 and isinstance(key, dict) and key:
        fields = ", ".join(str(field) for field in key)
        reason = f"another document has the same {fields}, which a unique index allows once"
    return f"the database refused the document ({name}, code {error.code}): {reason}"


def _reconnect_with_fresh_credentials(settings: Settings) -> None:
    global _client
    logger.warning("The database refused the login; signing in with the renewed credentials")
    old, _client = _client, _build(settings)
    if old is not None:
        old.close()
