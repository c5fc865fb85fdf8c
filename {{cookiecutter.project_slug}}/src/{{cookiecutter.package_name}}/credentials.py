"""The database username and password, read from Secrets Manager at most once per environment.

The secret is a JSON object {"username": ..., "password": ...}. It is cached for the whole life
of the execution environment (no expiry: a re-read costs latency and money on every cold path)
and read again only when the database rejects it, which is what a rotation looks like from here.
The standard SDK variables (AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_REGION) pick the endpoint.
The password is never logged and never put into a connection string.
"""

import json
from dataclasses import dataclass, field

import boto3
from botocore.config import Config

# Bounded calls (at most 2 attempts of 1 s + 2 s): a slow Secrets Manager must not eat the
# invocation; in-region it answers in tens of milliseconds.
_SDK_CONFIG = Config(
    connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2, "mode": "standard"}
)


class SecretError(RuntimeError):
    """The secret could not be read or does not hold a username and password."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


_cached: Credentials | None = None


def get(secret_arn: str, *, refresh: bool = False) -> Credentials:
    """Return the cached credentials; read the secret on first use or when refresh is True."""
    global _cached
    if _cached is None or refresh:
        _cached = _read(secret_arn)
    return _cached


def _read(secret_arn: str) -> Credentials:
    client = boto3.client("secretsmanager", config=_SDK_CONFIG)
    secret = client.get_secret_value(SecretId=secret_arn)["SecretString"]
    try:
        values = json.loads(secret)
        return Credentials(username=values["username"], password=values["password"])
    except (ValueError, TypeError, KeyError) as error:
        message = f"secret {secret_arn} must be a JSON object with username and password"
        raise SecretError(message) from error
