"""Settings read once, at start-up, from the environment that template.yaml sets.

MONGODB_URI       the connection string without credentials (mechanism and options included)
MONGODB_DATABASE  the database that holds the `items` collection
AWS_REGION        set by Lambda itself; required, see load()

What an auth mode needs besides these, its module (auth.py) reads and checks itself.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass

# Time kept back from the invocation deadline: pymongo's server selection re-checks its deadline
# only every 500 ms (minHeartbeatFrequencyMS), so a wait can overrun pymongo.timeout by up to half
# a second; the rest covers building, logging and returning the response on a throttled CPU.
DEADLINE_MARGIN_MS = 1000


class ConfigurationError(RuntimeError):
    """The function cannot start: a required setting is missing or wrong."""


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str
    database: str
    function_name: str
    region: str


def required(environ: Mapping[str, str], name: str, why: str) -> str:
    """The variable's value; ConfigurationError naming it, and saying why, when it is unset."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set: {why}")
    return value


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    """Read and check the settings; raise ConfigurationError naming the variable that is missing."""
    region = required(
        environ,
        "AWS_REGION",
        "Lambda sets it in every function, and the AWS SDK picks its regional endpoints from it. "
        "Outside Lambda, export AWS_REGION=<region> before starting the function.",
    )
    return Settings(
        mongodb_uri=required(environ, "MONGODB_URI", "template.yaml sets the connection string"),
        database=required(environ, "MONGODB_DATABASE", "template.yaml sets the database name"),
        function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
        region=region,
    )
