"""A local AWS Secrets Manager (moto's server mode) that counts GetSecretValue calls.

    sm = LocalSecretsManager(); sm.start()
    sm.endpoint_url                      # for AWS_ENDPOINT_URL_SECRETS_MANAGER
    arn = sm.create_secret("db", {"username": "app", "password": "..."})
    sm.put_secret_value(arn, {...})      # a rotation
    sm.reads                             # GetSecretValue calls served so far
    sm.stop()

Calls are counted as they reach the server, by the X-Amz-Target header of each request.
"""

import json
import logging
import threading

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from tests.support.lambda_process import FAKE_KEYS

READ = "secretsmanager.GetSecretValue"  # the X-Amz-Target of a read
REGION = "us-east-1"


class LocalSecretsManager:
    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self.reads = 0
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server = None
        self._thread = None

    def _counting_app(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET") == READ:
            self.reads += 1
        return self._app(environ, start_response)

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
        self._server = make_server(
            "127.0.0.1", 0, self._counting_app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def client(self):
        return boto3.client(
            "secretsmanager",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            **{name.lower(): value for name, value in FAKE_KEYS.items() if "SESSION" not in name},
        )

    def create_secret(self, name: str, value: dict) -> str:
        return self.client().create_secret(Name=name, SecretString=json.dumps(value))["ARN"]

    def put_secret_value(self, arn: str, value: dict) -> None:
        self.client().put_secret_value(SecretId=arn, SecretString=json.dumps(value))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._server.server_close()
            self._server = None
