"""IAM authentication (auth.py): the driver signs with the execution role's credentials, so the
function passes MongoClient nothing and has no credentials to fetch again."""

import pytest
from pymongo.errors import OperationFailure

from tests.conftest import package_module


@pytest.fixture(scope="session")
def auth(app):
    """The function's auth module, imported with the function's environment (as app is)."""
    return package_module("auth")


def test_the_client_gets_no_credentials(auth):
    assert auth.credentials() == {}
    assert auth.credentials(refresh=True) == {}


def test_a_refused_login_is_final(auth):
    assert auth.rejected(OperationFailure("Authentication failed.", code=18)) is False
    assert auth.ERRORS == ()
