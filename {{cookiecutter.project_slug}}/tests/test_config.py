"""Start-up settings: what the function needs from its environment, and what it says if absent."""

import pytest

from tests.conftest import package_module

config = package_module("config")
database = package_module("database")

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


def test_client_options_fill_in_what_the_uri_leaves_out():
    options = database._options(config.load(ENV))
    assert options == {
        "maxIdleTimeMS": 60_000,
        "maxPoolSize": 2,
        "serverSelectionTimeoutMS": 5_000,
        "connectTimeoutMS": 3_000,
        "appname": "orders-fn",
        "retryWrites": True,
        "retryReads": True,
    }


def test_the_uri_options_win_over_the_defaults():
    uri = "mongodb+srv://c.example.net/?maxPoolSize=1&maxIdleTimeMS=5000&w=majority"
    options = database._options(config.load(ENV | {"MONGODB_URI": uri}))
    assert "maxPoolSize" not in options
    assert "maxIdleTimeMS" not in options
    assert options["appname"] == "orders-fn"
