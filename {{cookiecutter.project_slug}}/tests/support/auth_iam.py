"""What an IAM project's tests start for the auth mode: a local STS (sts.py, moto checking SigV4
signatures) with the function's execution role, and the servers' side of MONGODB-AWS
(mongodb_aws.py), which has that role as its user in $external, as Atlas does.

    auth = LocalAuth(region).start()
    server = start_mongo(auth.login())   # a server whose users are the roles below
    auth.environment(mongo)   # the role's AssumeRole credentials, as Lambda puts them in the
                              # environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
                              # AWS_SESSION_TOKEN); with MONGODB_TEST_URI, yours
    auth.role_arn             # the function's role: the database user it signs in as
    auth.credentials("unmapped")   # another role's, which has no database user
    auth.reads()              # {"sts_exchanges": n}: the function role's logins checked with STS
    auth.stop()

Three roles are created in the local STS before it starts checking signatures: the function's
(mapped to a database user), the tests' own admin role (mapped too, so the tests' reads and counts
never count as the function's logins) and one with no database user.

This is tests/support/auth.py in IAM projects; the other auth mode has its own.
"""

import os
import uuid
from pathlib import Path

from tests.support.mongo import Login
from tests.support.mongodb_aws import EXCHANGES, role_users, serve
from tests.support.sts import REGION, LocalSTS

MODE = "iam"
FUNCTION_AWS_CALLS = ()  # the driver signs locally; the server calls STS
URI_OPTIONS = "authSource=%24external&authMechanism=MONGODB-AWS"  # as in template.yaml
ROLES = ("function", "admin", "unmapped")
# With MONGODB_TEST_URI the function signs as the developer: these come from the tests' own
# environment, taken when LocalAuth starts (before any test replaces them).
DEVELOPER_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


class LocalAuth:
    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self.sts = LocalSTS()
        self.arns: dict[str, str] = {}
        self._credentials: dict[str, dict[str, str]] = {}
        self._developer: dict[str, str | None] = {}

    def start(self) -> "LocalAuth":
        self._developer = {name: os.environ.get(name) for name in DEVELOPER_VARIABLES}
        self.sts.start()
        suffix = uuid.uuid4().hex[:8]
        for role in ROLES:
            self.arns[role] = self.sts.create_role(f"orders-{role}-{suffix}")
            self._credentials[role] = self.sts.assume_role(self.arns[role], f"{role}-session")
        self.sts.check_signatures()
        return self

    @property
    def role_arn(self) -> str:
        return self.arns["function"]

    def credentials(self, role: str = "function") -> dict[str, str]:
        """A role's temporary credentials, as the AWS_* variables Lambda sets."""
        return dict(self._credentials[role])

    def assume_again(self, role: str = "function") -> dict[str, str]:
        """New credentials of the role (Lambda's rotation: a new environment gets new ones)."""
        self.sts.check_signatures(on=False)
        try:
            return self.sts.assume_role(self.arns[role], f"{role}-{uuid.uuid4().hex[:8]}")
        finally:
            self.sts.check_signatures()

    def login(self) -> Login:
        """Who a local server lets in: the function's role and the tests' admin role."""
        users = role_users([self.arns["function"], self.arns["admin"]])
        serve(users, self.sts.url)
        admin = self._credentials["admin"]
        admin_options = {
            "username": admin["AWS_ACCESS_KEY_ID"],
            "password": admin["AWS_SECRET_ACCESS_KEY"],
            "authMechanismProperties": {"AWS_SESSION_TOKEN": admin["AWS_SESSION_TOKEN"]},
        }
        return Login(users, URI_OPTIONS, {}, admin_options)

    def environment(self, mongo) -> dict[str, str | None]:
        """The function's AWS credentials: the role's, or with MONGODB_TEST_URI the developer's
        (the driver then also reads ~/.aws, as the AWS SDK does)."""
        if mongo.embedded:
            return self.credentials()
        files = {"AWS_CONFIG_FILE": None, "AWS_SHARED_CREDENTIALS_FILE": None}
        return dict(self._developer) | files | {"HOME": str(Path.home())}

    def reads(self) -> dict[str, int]:
        """How often the function's role has signed in (one STS exchange per new connection)."""
        return {"sts_exchanges": EXCHANGES[self.role_arn]}

    def stop(self) -> None:
        self.sts.stop()
