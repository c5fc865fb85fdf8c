"""What a SCRAM project's function needs besides the database, started for the tests and tools:
a local Secrets Manager (secretsmanager.py) holding the test server's user as the secret.

    auth = LocalAuth(region).start()
    auth.environment(mongo)   # MONGODB_SECRET_ARN of a new secret, and the endpoint to read it at
    auth.reads()              # {"secret_reads": n}: what the function has read so far
    auth.secrets_manager      # the LocalSecretsManager itself, for the SCRAM tests
    auth.stop()

This is tests/support/auth.py in SCRAM projects; IAM projects have their own, which needs nothing.
"""

import uuid

from tests.support.secretsmanager import REGION, LocalSecretsManager

MODE = "scram"
SCRAM = True  # the test database has a user with a password


class LocalAuth:
    def __init__(self, region: str = REGION) -> None:
        self.secrets_manager = LocalSecretsManager(region)

    def start(self) -> "LocalAuth":
        self.secrets_manager.start()
        return self

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
