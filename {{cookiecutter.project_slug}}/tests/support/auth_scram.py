"""What a SCRAM project's tests start for the auth mode: the local servers' SCRAM user
(scram_users.py) and a local Secrets Manager (secretsmanager.py) holding it as the secret.

    auth = LocalAuth(region).start()
    server = start_mongo(auth.login())   # a server holding a new SCRAM user of the tier
    auth.environment(mongo)   # MONGODB_SECRET_ARN of a new secret with mongo's user, and the
                              # endpoint to read it at
    auth.reads()              # {"secret_reads": n}: what the function has read so far
    auth.secrets_manager      # the LocalSecretsManager itself, for the SCRAM tests
    auth.stop()

This is tests/support/auth.py in SCRAM projects; the other auth mode has its own.
"""

import uuid

from tests.support.mongo import Login
from tests.support.scram_users import ScramUser
from tests.support.secretsmanager import REGION, LocalSecretsManager

MODE = "scram"
FUNCTION_AWS_CALLS = ("GetSecretValue",)  # the secret, read before the first connection


class LocalAuth:
    def __init__(self, region: str = REGION) -> None:
        self.secrets_manager = LocalSecretsManager(region)

    def start(self) -> "LocalAuth":
        self.secrets_manager.start()
        return self

    def login(self) -> Login:
        """Who a new local server lets in: a SCRAM user of its own, with the tier's mechanisms."""
        return ScramUser.create().login()

    def environment(self, mongo) -> dict[str, str]:
        """The variables the function needs to log in to mongo: a fresh secret with its user."""
        secret = {"username": mongo.username, "password": mongo.password}
        return {
            "MONGODB_SECRET_ARN": self.secrets_manager.create_secret(f"db-{uuid.uuid4()}", secret),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.secrets_manager.endpoint_url,
        }

    def reads(self) -> dict[str, int]:
        """How often the function has read each credential source so far."""
        return {"secret_reads": self.secrets_manager.reads}

    def stop(self) -> None:
        self.secrets_manager.stop()
