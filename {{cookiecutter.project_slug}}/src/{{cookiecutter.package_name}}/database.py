"""The one MongoClient of this execution environment, built on first use and reused after.

Lambda runs one invocation at a time per environment and freezes it between invocations, so a
single client with a tiny pool serves every invocation; the handler never closes it.
{%- if cookiecutter.auth_mode == 'scram' %}
The username and password go to MongoClient as arguments; the URI is used exactly as given.
{%- else %}
The URI names MONGODB-AWS: the driver signs with the execution role's credentials that Lambda
puts in the environment, so no credentials appear in code or configuration.
{%- endif %}
"""

from collections.abc import Callable
{%- if cookiecutter.auth_mode == 'scram' %}

from botocore.exceptions import BotoCoreError, ClientError
from pymongo import MongoClient, uri_parser
from pymongo.collection import Collection
from pymongo.errors import OperationFailure, PyMongoError
{%- else %}

from pymongo import MongoClient, uri_parser
from pymongo.collection import Collection
from pymongo.errors import PyMongoError
{%- endif %}

{% if cookiecutter.auth_mode == 'scram' -%}
from . import credentials
{% endif -%}
from .config import Settings
from .logs import logger

# Applied unless the URI sets them (a URI option always wins over these defaults).
URI_DEFAULTS = {
    "maxIdleTimeMS": 60_000,  # drop pooled connections idle for a minute, as frozen ones will be
    "maxPoolSize": 2,  # one invocation at a time per environment; template.yaml's URI says 1
    "serverSelectionTimeoutMS": 5_000,  # give up on an unreachable cluster well before the timeout
    "connectTimeoutMS": 3_000,  # a TCP + TLS handshake slower than this will not succeed
}

_client: MongoClient | None = None


class Unavailable(Exception):
    """The database (or its secret) could not be reached, or answered too slowly."""


def _options(settings: Settings) -> dict:
    in_uri = uri_parser.split_options(settings.mongodb_uri.partition("?")[2], validate=False)
    options = {name: value for name, value in URI_DEFAULTS.items() if name not in in_uri}
    options["appname"] = settings.function_name  # names the function in Atlas logs and metrics
    options["retryWrites"] = True  # one transparent retry after a failover or dropped socket
    options["retryReads"] = True  # the same for reads
    return options
{%- if cookiecutter.auth_mode == 'scram' %}


def _build(settings: Settings, *, refresh: bool = False) -> MongoClient:
    options = _options(settings)
    logger.info("Creating the MongoClient", extra={"client_options": options})
    secret = credentials.get(settings.secret_arn, refresh=refresh)
    return MongoClient(
        settings.mongodb_uri, username=secret.username, password=secret.password, **options
    )
{%- else %}


def _build(settings: Settings) -> MongoClient:
    options = _options(settings)
    logger.info("Creating the MongoClient", extra={"client_options": options})
    return MongoClient(settings.mongodb_uri, **options)
{%- endif %}


def client(settings: Settings) -> MongoClient:
    """Return this environment's MongoClient, creating it on the first call."""
    global _client
    if _client is None:
        _client = _build(settings)
    return _client


def items(settings: Settings) -> Collection:
    return client(settings)[settings.database]["items"]
{%- if cookiecutter.auth_mode == 'scram' %}


AUTHENTICATION_FAILED = 18


def run[T](settings: Settings, operation: Callable[[Collection], T]) -> T:
    """Run operation on the items collection; on rejected credentials re-read the secret once."""
    try:
        try:
            return operation(items(settings))
        except OperationFailure as error:
            if not _rejected_credentials(error):
                raise
        _reconnect_with_fresh_credentials(settings)
        return operation(items(settings))
    except (PyMongoError, credentials.SecretError, BotoCoreError, ClientError) as error:
        raise Unavailable(error) from error


def _rejected_credentials(error: OperationFailure) -> bool:
    # MongoDB sends code 18; some wire-compatible servers (the test server) send only the message.
    return error.code == AUTHENTICATION_FAILED or "Authentication failed" in str(error)


def _reconnect_with_fresh_credentials(settings: Settings) -> None:
    global _client
    logger.warning("Authentication failed; re-reading the database secret once")
    old, _client = _client, _build(settings, refresh=True)
    if old is not None:
        old.close()
{%- else %}


def run[T](settings: Settings, operation: Callable[[Collection], T]) -> T:
    """Run operation on the items collection, turning driver errors into Unavailable."""
    try:
        return operation(items(settings))
    except PyMongoError as error:
        raise Unavailable(error) from error
{%- endif %}
