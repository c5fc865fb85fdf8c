"""Invoke the function locally, without Docker, the way Lambda runs it.

    python tools/invoke.py events/post-item.json events/get-item.json [--timeout-ms 3000] [--logs]

Each event goes through a local Lambda Runtime API to the handler running in its own process under
the real runtime interface client (awslambdaric); one process serves all the events, as one
execution environment would. Without MONGODB_TEST_URI the embedded MongoDB wire server is started,
and in every case what the auth mode needs besides it (tests/support/auth.py; for SCRAM a secret
holding the server's user). A GET /items/<id> event that follows a POST in the same run asks for
the item that POST created.

With MONGODB_TEST_URI in an IAM project, the driver signs with whatever AWS credentials it finds:
environment variables first, then ~/.aws/credentials and ~/.aws/config, i.e. as you, not as the
function's execution role.
"""

import argparse
import json
import os
import re
import tempfile
from pathlib import Path

from tests.support import auth
from tests.support.lambda_process import LambdaProcess, lambda_environment
from tests.support.mongo import start_mongo
from tests.support.project import HANDLER, SRC
from tests.support.runtime_api import RuntimeAPI

ITEM_PATH = re.compile(r"/items/[^/]+")
PASS_THROUGH = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="invoke.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("events", nargs="+", type=Path, help="event files, e.g. events/health.json")
    parser.add_argument("--timeout-ms", type=int, default=3000, help="each invocation's timeout")
    parser.add_argument("--logs", action="store_true", help="print the function's logs at the end")
    return parser.parse_args(argv)


def _function_env(mongo, local_auth: auth.LocalAuth) -> dict[str, str | None]:
    env = {
        "MONGODB_URI": mongo.uri,
        "MONGODB_DATABASE": os.environ.get("MONGODB_DATABASE", "invoke_local"),
        "POWERTOOLS_SERVICE_NAME": "items",
        "POWERTOOLS_METRICS_NAMESPACE": "invoke-local",
    }
    env |= local_auth.environment(mongo)
    if not auth.SCRAM and not mongo.embedded:  # MONGODB-AWS against a real server: sign as you
        env |= {name: os.environ.get(name) for name in PASS_THROUGH}
        env |= {"AWS_CONFIG_FILE": None, "AWS_SHARED_CREDENTIALS_FILE": None}
        env["HOME"] = str(Path.home())
    return env


def _follow_post(event: dict, created_id: str | None) -> dict:
    http = event.get("requestContext", {}).get("http", {})
    path = event.get("rawPath", "")
    if created_id and http.get("method") == "GET" and ITEM_PATH.fullmatch(path):
        event = {**event, "rawPath": f"/items/{created_id}"}
        event["pathParameters"] = {"id": created_id}
    return event


def _show(path: Path, event: dict, result) -> str | None:
    method = event.get("requestContext", {}).get("http", {}).get("method", "?")
    print(f"{path}: {method} {event.get('rawPath')}")
    if result.status != "success":
        print(f"  {result.status} after {result.elapsed_ms:.0f} ms: {json.dumps(result.payload)}")
        return None
    response = result.payload
    body = response.get("body")
    print(f"  {response.get('statusCode')} in {result.elapsed_ms:.0f} ms: {body}")
    if response.get("statusCode") == 201:
        return json.loads(body).get("id")
    return None


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    mongo = start_mongo(scram=auth.SCRAM)
    local_auth = auth.LocalAuth().start()
    api = RuntimeAPI().start()
    log = Path(tempfile.mkdtemp(prefix="invoke-")) / "function.log"
    env = lambda_environment(api.address, SRC, HANDLER, _function_env(mongo, local_auth))
    process = LambdaProcess(env, log)
    where = "embedded MongoDB" if mongo.embedded else "MONGODB_TEST_URI"
    print(f"{HANDLER} under awslambdaric, database: {where}")
    failures = 0
    try:
        process.start()
        created_id = None
        for path in args.events:
            event = _follow_post(json.loads(path.read_text()), created_id)
            result = api.invoke(event, args.timeout_ms)
            created_id = _show(path, event, result) or created_id
            failures += result.status != "success"
        init_error = api.wait_init_error(0)
        if init_error:
            print(f"start-up failed: {init_error.get('errorMessage')}")
    finally:
        process.stop()
        api.stop()
        local_auth.stop()
        mongo.close()
    if args.logs or failures:
        print(f"--- function logs ({log})\n{process.logs()}")
    return 1 if failures else 0
