"""Settings read once, at start-up, from the environment that template.yaml sets.

MONGODB_URI       the connection string without credentials (mechanism and options included);
                  one pymongo refuses stops start-up, see mongodb_uri()
MONGODB_DATABASE  the database that holds the `items` collection
MONGODB_MAX_DOCUMENT_DEPTH  the cluster tier's nesting limit for documents (100; 50 on M0 and
                  Flex); optional, 100 when unset
MONGODB_IDLE_REFRESH_SECONDS  how long the connections may sit idle before the network path to
                  Atlas may have forgotten them (database.py opens new ones first); optional,
                  IDLE_REFRESH_SECONDS when unset
AWS_REGION        set by Lambda itself; required, see load()

What an auth mode needs besides these, its module (auth.py) reads and checks itself.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pymongo import MongoClient, uri_parser
from pymongo.errors import PyMongoError

# Time kept back from the invocation deadline: pymongo's server selection re-checks its deadline
# only every 500 ms (minHeartbeatFrequencyMS), so a wait can overrun pymongo.timeout by up to half
# a second; the rest covers building, logging and returning the response on a throttled CPU.
DEADLINE_MARGIN_MS = 1000
# MongoDB supports "no more than 100 levels of nesting for BSON documents. Each object or array
# adds a level." (manual, Limits and Thresholds, "Nested Depth for BSON Documents":
# https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-Nested-Depth-for-BSON-Documents);
# Atlas M0 and Flex allow "a maximum of 50 nested levels" (Atlas free-shared-limitations and
# flex-limitations, "BSON Nested Object Depth"). documents.py says how the levels are counted.
MONGODB_MAX_DEPTH = 100

# The network paths to Atlas forget a TCP flow idle for 350 s and answer the next packet on it with
# a reset: a NAT gateway ("Internet connection drops after 350 seconds",
# https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-troubleshooting.html) and the
# Network Load Balancer behind an Atlas private endpoint (its TCP idle timeout, 350 s by default,
# https://docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html).
# template.yaml sets MONGODB_IDLE_REFRESH_SECONDS per network mode; unset (a local run), the
# function assumes the strictest path, 350 s less a margin of 50 s: the monitors' last check can
# be up to a heartbeat (5 s) older than the last request, and a freeze ends at any moment.
IDLE_REFRESH_SECONDS = 300


class ConfigurationError(RuntimeError):
    """The function cannot start: a required setting is missing or wrong."""


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str
    database: str
    function_name: str
    region: str
    max_document_depth: int = MONGODB_MAX_DEPTH
    idle_refresh_seconds: int = IDLE_REFRESH_SECONDS


def required(environ: Mapping[str, str], name: str, why: str) -> str:
    """The variable's value; ConfigurationError naming it, and saying why, when it is unset."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set: {why}")
    return value


def aws_region(environ: Mapping[str, str] = os.environ) -> str:
    """AWS_REGION, which Lambda sets in every function; ConfigurationError when it is unset."""
    return required(
        environ,
        "AWS_REGION",
        "Lambda sets it in every function, and the AWS SDK picks its regional endpoints from it. "
        "Outside Lambda, export AWS_REGION=<region> before starting the function.",
    )


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    """Read and check the settings; raise ConfigurationError naming the variable that is missing."""
    region = aws_region(environ)
    return Settings(
        mongodb_uri=mongodb_uri(environ),
        database=required(environ, "MONGODB_DATABASE", "template.yaml sets the database name"),
        function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
        region=region,
        max_document_depth=max_document_depth(environ),
        idle_refresh_seconds=idle_refresh_seconds(environ),
    )


def max_document_depth(environ: Mapping[str, str]) -> int:
    """MONGODB_MAX_DOCUMENT_DEPTH, the levels of nesting the cluster stores (documents.py says how
    they are counted): a whole number from 1 to MongoDB's 100; 100 when unset."""
    return _whole_number(
        environ,
        "MONGODB_MAX_DOCUMENT_DEPTH",
        default=MONGODB_MAX_DEPTH,
        most=MONGODB_MAX_DEPTH,
        rule=f"a whole number from 1 to {MONGODB_MAX_DEPTH}, MongoDB's limit; template.yaml sets "
        "it to the Atlas tier's limit (50 on M0 and Flex)",
    )


def idle_refresh_seconds(environ: Mapping[str, str]) -> int:
    """MONGODB_IDLE_REFRESH_SECONDS: after this many seconds without a request the function opens
    new connections before serving; a whole number of seconds, IDLE_REFRESH_SECONDS when unset."""
    return _whole_number(
        environ,
        "MONGODB_IDLE_REFRESH_SECONDS",
        default=IDLE_REFRESH_SECONDS,
        rule="a whole number of seconds, 1 or more, below the network path's idle timeout; "
        "template.yaml sets it per network mode",
    )


def _whole_number(
    environ: Mapping[str, str], name: str, *, default: int, rule: str, most: int | None = None
) -> int:
    """The optional variable as a whole number from 1 (to most), default when it is unset;
    ConfigurationError naming it and saying the rule otherwise."""
    value = environ.get(name, "").strip()
    if not value:
        return default
    whole = value.isascii() and value.isdigit()
    if not (whole and int(value) >= 1 and (most is None or int(value) <= most)):
        raise ConfigurationError(f"{name} is {value!r}: it must be {rule}")
    return int(value)


def mongodb_uri(environ: Mapping[str, str]) -> str:
    """MONGODB_URI, checked as far as it can be without DNS; ConfigurationError naming it when
    pymongo would refuse it, so a bad one stops start-up instead of failing every request.

    The client is built on the first request, and pymongo resolves a mongodb+srv:// host only
    then, so what the host's DNS TXT record adds can be checked only there (database.py). Here:
    every option's name and value, as pymongo's parse_uri checks them (MongoClient would only warn
    and drop a bad one); srvMaxHosts with loadBalanced=true, which the load-balancer specification
    refuses and pymongo refuses only after DNS; and the rest of what MongoClient checks when it is
    built, which it does without DNS or a connection when told not to connect (that client is
    closed unused: database.py builds the one that connects)."""
    name = "MONGODB_URI"
    uri = required(environ, name, "template.yaml sets the connection string")
    try:
        options = uri_parser.split_options(uri.partition("?")[2], warn=False) if "?" in uri else {}
        if options.get("loadBalanced") and options.get("srvMaxHosts"):
            raise ValueError(
                "loadBalanced=true and srvMaxHosts together: the load balancer picks the mongos, "
                "so leave srvMaxHosts out"
            )
        MongoClient(uri, connect=False).close()
    except (PyMongoError, ValueError, TypeError) as error:
        raise ConfigurationError(
            f"{name} is not a connection string pymongo accepts: {error} "
            "(template.yaml sets it; generate the project again or fix the value deployed)"
        ) from error
    return uri
