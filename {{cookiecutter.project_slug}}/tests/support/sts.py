"""A local AWS STS and IAM (moto's server mode) in a process of its own, checking SigV4 signatures.

    sts = LocalSTS().start()
    arn = sts.create_role("orders-fn")        # an IAM role Lambda may assume
    keys = sts.assume_role(arn, "orders-fn")  # the AWS_* credential variables, as Lambda's
    sts.check_signatures()                    # from now on every request must be signed right
    sts.check_signatures(on=False)            # unsigned set-up again (new credentials)
    sts.url                                   # where MONGODB-AWS's server side sends requests
    sts.stop()

Set-up (creating roles, assuming them) is done first, unsigned as moto allows; then signature
checks are turned on (moto's `/moto-api/reset-auth`), after which a wrong secret is refused with
SignatureDoesNotMatch and a forged session token with InvalidClientTokenId, as AWS does;
GetCallerIdentity needs no policy. The switch is process-wide in moto, which is why this moto runs
in a process of its own: no other test that signs with dummy keys is affected.

Run as `python -m tests.support.sts`, it serves on 127.0.0.1 and prints its port.
"""

import http.client
import json
import logging
import subprocess
import sys
from urllib.parse import urlsplit

import boto3

from tests.support.lambda_process import FAKE_KEYS
from tests.support.project import ROOT

REGION = "us-east-1"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


class LocalSTS:
    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "LocalSTS":
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.sts"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = f"http://127.0.0.1:{int(self._process.stdout.readline())}"
        return self

    def _client(self, service: str):
        keys = {name.lower(): value for name, value in FAKE_KEYS.items() if "SESSION" not in name}
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **keys)

    def create_role(self, name: str) -> str:
        """A role the Lambda service may assume; its ARN."""
        trust = json.dumps(LAMBDA_TRUST)
        return self._client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=trust)[
            "Role"
        ]["Arn"]

    def assume_role(self, arn: str, session: str) -> dict[str, str]:
        """Temporary credentials of the role, as Lambda puts them in a function's environment."""
        found = self._client("sts").assume_role(RoleArn=arn, RoleSessionName=session)
        credentials = found["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    def check_signatures(self, on: bool = True) -> None:
        """From now on, refuse requests whose SigV4 signature or session token is wrong (or,
        with on=False, accept unsigned requests again, to set something up)."""
        where = urlsplit(self.url)
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
        try:
            # the body: how many unsigned actions moto accepts from now
            body = b"0" if on else b"inf"
            headers = {"Content-Type": "text/plain"}
            connection.request("POST", "/moto-api/reset-auth", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"moto refused to switch signature checks: {response.status}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process.stdout.close()
            self._process = None


def main() -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
