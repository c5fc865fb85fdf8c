"""What an IAM project's function needs besides the database, started for the tests and tools:
nothing. The driver signs with the AWS credentials in the function's environment (fake ones under
the tests, see lambda_process.py) and the embedded server does not check them.

    auth = LocalAuth(region).start()
    auth.environment(mongo)   # {}: no variable beyond the database's
    auth.reads()              # {}: no credential source to read
    auth.stop()

This is tests/support/auth.py in IAM projects; SCRAM projects have their own.
"""

MODE = "iam"
SCRAM = False  # the test database has no users


class LocalAuth:
    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region

    def start(self) -> "LocalAuth":
        return self

    def environment(self, mongo) -> dict[str, str]:
        return {}

    def reads(self) -> dict[str, int]:
        return {}

    def stop(self) -> None:
        pass
