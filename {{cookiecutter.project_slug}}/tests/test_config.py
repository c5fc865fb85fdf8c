"""Start-up settings: what the function needs from its environment, and what it says if absent."""

from urllib.parse import parse_qs, urlencode

import dns.resolver
import pytest

from tests.conftest import package_module
from tests.support.dns_server import LocalDNS
from tests.support.mongo import TIER
from tests.support.project import deployed_options, deployed_uri, deployed_variable

config = package_module("config")


@pytest.fixture(scope="module")
def database(app):
    """The function's database module, imported with the function's environment (as app is)."""
    return package_module("database")


ENV = {
    "AWS_REGION": "eu-west-1",
    "MONGODB_URI": "mongodb://db.example.net/?authSource=admin",
    "MONGODB_DATABASE": "app",
    "AWS_LAMBDA_FUNCTION_NAME": "orders-fn",
}


def test_missing_aws_region_names_it_and_says_why():
    env = {name: value for name, value in ENV.items() if name != "AWS_REGION"}
    with pytest.raises(config.ConfigurationError) as raised:
        config.load(env)
    message = str(raised.value)
    assert message.startswith("AWS_REGION is not set")
    assert "Lambda sets it" in message
    assert "Secrets Manager" not in message  # the same text in both auth modes: true in both


@pytest.mark.parametrize("name", ["MONGODB_URI", "MONGODB_DATABASE"])
def test_missing_connection_settings_are_named(name):
    env = {key: value for key, value in ENV.items() if key != name}
    with pytest.raises(config.ConfigurationError, match=f"^{name} is not set"):
        config.load(env)


def test_settings_come_from_the_environment():
    settings = config.load(ENV)
    assert (settings.region, settings.database, settings.function_name) == (
        "eu-west-1",
        "app",
        "orders-fn",
    )


def test_client_options_fill_in_what_the_uri_leaves_out(database):
    options = database._options(config.load(ENV))
    lambda_options = {"appname": "orders-fn", "retryWrites": True, "retryReads": True}
    assert options == database.URI_DEFAULTS | lambda_options


def test_the_uri_options_win_over_the_defaults(database):
    uri = "mongodb+srv://c.example.net/?maxPoolSize=1&maxIdleTimeMS=5000&w=majority"
    options = database._options(config.load(ENV | {"MONGODB_URI": uri}))
    assert "maxPoolSize" not in options
    assert "maxIdleTimeMS" not in options
    assert options["appname"] == "orders-fn"


def test_the_deployed_uri_and_the_code_make_a_lambda_sized_client(database):
    query = urlencode(deployed_options("mongodb"))
    in_uri = {name: values[-1] for name, values in parse_qs(query).items()}
    # the deployed options on a local address: a mongodb+srv host would need a DNS lookup
    settings = config.load(ENV | {"MONGODB_URI": f"mongodb://127.0.0.1:9/?{query}"})
    client = database._build(settings)  # with this auth mode's credentials, as deployed
    try:
        options, pool = client.options, client.options.pool_options

        def effective(name: str) -> int:  # the URI's value where it sets one, else the code's
            return int(in_uri.get(name, database.URI_DEFAULTS[name]))

        assert pool.max_pool_size == effective("maxPoolSize") <= 2  # one invocation at a time
        assert pool.max_idle_time_seconds == effective("maxIdleTimeMS") / 1000
        assert options.server_selection_timeout == effective("serverSelectionTimeoutMS") / 1000
        # the monitors' connect timeout: template.yaml's, from the connection budget
        assert pool.connect_timeout * 1000 == TIER["budget"]["monitor_connect_timeout_ms"]
        assert pool.metadata["application"] == {"name": "orders-fn"}
        assert options.retry_writes and options.retry_reads
    finally:
        client.close()


def deployed_depth() -> str:
    """The MONGODB_MAX_DOCUMENT_DEPTH that template.yaml gives the function (a quoted number)."""
    return deployed_variable("MONGODB_MAX_DOCUMENT_DEPTH")


def test_the_deployed_document_depth_is_the_tiers_and_is_read():
    depth = deployed_depth()
    assert depth in ("100", "50")  # MongoDB's limit; Atlas M0 and Flex allow 50
    assert config.load(ENV | {"MONGODB_MAX_DOCUMENT_DEPTH": depth}).max_document_depth == int(depth)


def test_without_a_document_depth_it_is_mongodbs_100():
    assert config.load(ENV).max_document_depth == 100


@pytest.mark.parametrize("value", ["deep", "0", "101", "-5", "1.5", "\u0665\u0660"])
def test_a_bad_document_depth_stops_start_up_naming_it(value):
    with pytest.raises(config.ConfigurationError, match=r"^MONGODB_MAX_DOCUMENT_DEPTH is '"):
        config.load(ENV | {"MONGODB_MAX_DOCUMENT_DEPTH": value})


def test_the_deployed_idle_limit_is_below_the_network_paths_and_is_read():
    seconds = deployed_variable("MONGODB_IDLE_REFRESH_SECONDS")
    assert 0 < int(seconds) < 350  # NAT gateways and load balancers forget flows idle for 350 s
    assert config.load(ENV | {"MONGODB_IDLE_REFRESH_SECONDS": seconds}).idle_refresh_seconds == int(
        seconds
    )


def test_without_an_idle_limit_it_is_the_strictest_paths():
    assert config.load(ENV).idle_refresh_seconds == config.IDLE_REFRESH_SECONDS == 300


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1.5", "\u0665\u0660"])
def test_a_bad_idle_limit_stops_start_up_naming_it_in_one_line(value):
    with pytest.raises(config.ConfigurationError, match=r"^MONGODB_IDLE_REFRESH_SECONDS is '") as e:
        config.load(ENV | {"MONGODB_IDLE_REFRESH_SECONDS": value})
    assert "\n" not in str(e.value)


@pytest.fixture
def dns_server(monkeypatch):
    """A loopback DNS server with no records, which pymongo's DNS lookups would reach."""
    server = LocalDNS({}).start()
    monkeypatch.setattr(dns.resolver, "default_resolver", server.resolver())
    yield server
    server.stop()


LB_HOST = "cluster0-pl-0-lb.abcde.mongodb.net"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        # what the -lb host's TXT record adds (loadBalanced=true), written out, with srvMaxHosts
        (f"mongodb+srv://{LB_HOST}/?loadBalanced=true&srvMaxHosts=3", "srvMaxHosts together"),
        (f"mongodb+srv://{LB_HOST}/?loadBalanced=true&srvMaxHosts=3&maxPoolSize=1", "srvMaxHosts"),
        ("mongodb://a.example.net:1,b.example.net:2/?loadBalanced=true", "multiple hosts"),
        ("mongodb+srv://c.example.net/?replicaSet=rs0&loadBalanced=true", "replicaSet"),
        ("mongodb://c.example.net/?srvMaxHosts=3", "only allowed with 'mongodb+srv://'"),
        ("mongodb+srv://c.example.net:27017/?maxPoolSize=1", "port number"),
        ("mongodb+srv://c.example.net/?maxPoolSize=one", "must be an integer"),
        ("mongodb+srv://c.example.net/?maxPoolSise=1", "Unknown option"),
        ("mongodb+srv://c.example.net/?maxPoolSize", "key=value pairs"),
        ("https://c.example.net/", "Invalid URI scheme"),
    ],
)
def test_a_uri_pymongo_refuses_stops_start_up_naming_it(dns_server, uri, reason):
    with pytest.raises(config.ConfigurationError) as raised:
        config.load(ENV | {"MONGODB_URI": uri})
    message = str(raised.value)
    assert message.startswith("MONGODB_URI is not a connection string pymongo accepts: ")
    assert reason in message
    assert "\n" not in message
    assert dns_server.queries == []  # checked without DNS: nothing was looked up


@pytest.mark.parametrize(
    "uri",
    [
        deployed_uri(),
        f"mongodb+srv://{LB_HOST}/?authSource=admin&maxPoolSize=1&connectTimeoutMS=3000",
        "mongodb+srv://cluster0-pl-0.abcde.mongodb.net/?maxPoolSize=1&srvMaxHosts=3",
    ],
    ids=["deployed", "load-balanced-host", "sharded-legacy-host"],
)
def test_the_uris_template_yaml_renders_start_up_without_dns(dns_server, uri):
    assert config.load(ENV | {"MONGODB_URI": uri}).mongodb_uri == uri
    assert dns_server.queries == []  # the SRV and TXT records are looked up on first use only
