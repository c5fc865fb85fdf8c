"""How the function authenticates to the database: AWS IAM (MONGODB-AWS).

The URI names the mechanism (authMechanism=MONGODB-AWS, authSource=$external) and pymongo[aws]
signs with the execution role's temporary credentials, which Lambda puts in the environment. So
MongoClient gets no credentials from here, nothing is cached, and a rejected login is final: the
same role would be rejected again.

database.py uses the same three names in every auth mode: credentials(), rejected() and ERRORS.
"""

from pymongo.errors import OperationFailure

# Errors besides the driver's that mean "the database cannot be used now": none (no AWS call).
ERRORS: tuple[type[Exception], ...] = ()


def credentials(*, refresh: bool = False) -> dict[str, str]:
    """The MongoClient arguments that authenticate: none, the driver finds the role's own."""
    return {}


def rejected(error: OperationFailure) -> bool:
    """Whether fresh credentials could cure this error: never, there are none to fetch."""
    return False
