"""How the function authenticates to the database: AWS IAM (MONGODB-AWS).

The URI names the mechanism (authMechanism=MONGODB-AWS, authSource=$external) and pymongo[aws]
signs with the execution role's temporary credentials, which Lambda puts in the environment; the
driver reads them anew for every connection it opens. So MongoClient gets no credentials from
here, nothing is cached, and a refused login is not retried within the request: the same role
would be refused again (it has no database user, or Atlas could not check it). database.py then
answers 503 for a while without trying (AUTH_BACKOFF_SECONDS); the first request after that signs
in with what the environment holds then.

database.py uses the same three names in every auth mode: credentials(), renewed() and ERRORS;
a SnapStart project's before-snapshot hook calls forget().
"""

# The signer and the AWS SDK it reads the credentials with: pymongo imports them at the first
# login, which would put about 200 ms of imports inside a cold request's deadline while its
# connections queue at the cluster (README.md, "Connection budget"); here they are imported while
# the environment initialises.
import pymongo_auth_aws  # noqa: F401
from pymongo_auth_aws.auth import set_cached_credentials

# Errors besides the driver's that mean "the database cannot be used now": none (no AWS call).
ERRORS: tuple[type[Exception], ...] = ()


def credentials(*, refresh: bool = False) -> dict[str, str]:
    """The MongoClient arguments that authenticate: none, the driver finds the role's own."""
    return {}


def renewed() -> bool:
    """After a refused login: whether there are other credentials to sign in with now. Never: the
    role's are the environment's, which the driver reads for every connection anyway."""
    return False


def forget() -> None:
    """Drop the credentials the driver keeps between logins. pymongo caches the role's credentials
    in pymongo_auth_aws when they come from a source that expires them (the container credentials
    endpoint, which is how a SnapStart function gets them: the access-key variables have no
    expiry and are not cached), so before a snapshot they go: every environment restored from it
    reads its own at its first login."""
    set_cached_credentials(None)
