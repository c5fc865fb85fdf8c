"""How the function authenticates to the database: SCRAM, with a username and password read from
Secrets Manager at most once per environment.

MONGODB_SECRET_ARN (set by template.yaml, read at start-up) names a secret holding the JSON object
{"username": ..., "password": ...}. It is cached for the whole life of the execution environment
(no expiry: a re-read costs latency and money on every cold path) and read again only when the
database refuses it, which is what a rotation looks like from here: renewed() says whether the
secret changed, and database.py builds a new client only then. The same secret would be refused
again, so database.py answers 503 for a while instead (AUTH_BACKOFF_SECONDS). The standard SDK
variables (AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_REGION) pick the endpoint. The password goes to
MongoClient as an argument; it is never logged and never put into a connection string.

database.py uses the same three names in every auth mode: credentials(), renewed() and ERRORS;
a SnapStart project's before-snapshot hook calls forget().
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .config import aws_region, required
from .observability import tracer

# Bounded calls (at most 2 attempts of 1 s + 2 s): a slow Secrets Manager must not eat the
# invocation; in-region it answers in tens of milliseconds.
_SDK_CONFIG = Config(
    connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2, "mode": "standard"}
)

# The secret read gets a trace subsegment (its operation and request id, never the value).
tracer.patch(["botocore"])


class SecretError(RuntimeError):
    """The secret could not be read or does not hold a username and password."""


# Errors besides the driver's that mean "the database cannot be used now": the secret's.
ERRORS: tuple[type[Exception], ...] = (SecretError, BotoCoreError, ClientError)


def secret_arn(environ: Mapping[str, str]) -> str:
    return required(
        environ,
        "MONGODB_SECRET_ARN",
        "template.yaml sets it to the AtlasSecretArn parameter, the secret that holds the "
        'database user as {"username", "password"}',
    )


SECRET_ARN = secret_arn(os.environ)
# The SDK's models: the loader of the first client's session, shared by every client built after it.
_models = None


def _secrets_client():
    """A Secrets Manager client of its own botocore session, so it resolves the credentials anew
    (a session keeps the first credentials it resolved, and each client keeps its session's), but
    with the models the first one loaded: about 10 ms once they are, 60-70 ms the first time."""
    global _models
    session = botocore.session.get_session()
    if _models is None:
        _models = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _models)
    return boto3.session.Session(botocore_session=session).client(
        "secretsmanager", region_name=aws_region(), config=_SDK_CONFIG
    )


# Built at start-up, as AWS advises for SDK clients: building one loads the service's model, about
# 100 ms of CPU that a cold invocation would otherwise spend inside its deadline while its
# connections queue at the cluster (README.md, "Connection budget"). It opens no connection yet,
# but it resolves the credentials; forget() drops it and the next read builds another.
_SECRETS = _secrets_client()


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


_cached: Credentials | None = None


def credentials(*, refresh: bool = False) -> dict[str, str]:
    """The MongoClient arguments that authenticate: the secret's username and password, read on
    first use and when refresh is True, cached otherwise."""
    secret = get(refresh=refresh)
    return {"username": secret.username, "password": secret.password}


def renewed() -> bool:
    """After a refused login: read the secret again and say whether it changed (a rotation, worth
    a new client) or not (the same user and password would be refused again)."""
    in_use = _cached
    return get(refresh=True) != in_use


def get(*, refresh: bool = False) -> Credentials:
    """Return the cached credentials; read the secret on first use or when refresh is True."""
    global _cached
    if _cached is None or refresh:
        _cached = _read(SECRET_ARN)
    return _cached


def forget() -> None:
    """Drop the cached secret and the SDK client, with the credentials it resolved and the
    connection it may hold. Before a SnapStart snapshot: every environment restored from it
    reads the secret with its own credentials, and a client rebuilt here would resolve them into
    the snapshot again, so the next read builds it."""
    global _cached, _SECRETS
    if _SECRETS is not None:
        _SECRETS.close()  # its connection to Secrets Manager, if a read opened one
    _cached, _SECRETS = None, None


def _read(arn: str) -> Credentials:
    global _SECRETS
    if _SECRETS is None:
        _SECRETS = _secrets_client()
    secret = _SECRETS.get_secret_value(SecretId=arn)["SecretString"]
    try:
        values = json.loads(secret)
        return Credentials(username=values["username"], password=values["password"])
    except (ValueError, TypeError, KeyError) as error:
        message = f"secret {arn} must be a JSON object with username and password"
        raise SecretError(message) from error
