"""Invoke the function locally, without Docker, the way Lambda runs it.

    python tools/invoke.py events/post-item.json events/get-item.json [--timeout-ms 3000] [--logs]

Each event goes through a local Lambda Runtime API to the handler running in its own process under
the real runtime interface client (awslambdaric); one process serves all the events, as one
execution environment would. What the auth mode needs is started first (tests/support/auth.py),
then, without MONGODB_TEST_URI, the embedded MongoDB wire server, whose users are that mode's. The
function gets the URI template.yaml gives it, on the local server's host and port. A GET
/items/<id> event that follows a POST in the same run asks for the item that POST created.

With MONGODB_TEST_URI the function signs in as that server expects; tests/support/auth.py says with
what (an IAM project: your own AWS credentials, not the function's execution role).
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
from tests.support.project import (
    HANDLER,
    SRC,
    DeployedFunction,
    deployed_function,
    deployed_uri_for,
)
from tests.support.runtime_api import RuntimeAPI

ITEM_PATH = re.compile(r"/items/[^/]+")


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="invoke.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("events", nargs="+", type=Path, help="event files, e.g. events/health.json")
    parser.add_argument("--timeout-ms", type=int, default=3000, help="each invocation's timeout")
    parser.add_argument("--logs", action="store_true", help="print the function's logs at the end")
    return parser.parse_args(argv)


def _function_env(
    mongo, local_auth: auth.LocalAuth, function: DeployedFunction
) -> dict[str, str | None]:
    env = {
        "MONGODB_URI": deployed_uri_for(mongo),
        "MONGODB_DATABASE": os.environ.get("MONGODB_DATABASE", "invoke_local"),
        "POWERTOOLS_SERVICE_NAME": function.service,
        "POWERTOOLS_METRICS_NAMESPACE": "invoke-local",
    }
    return env | local_auth.environment(mongo)


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
    function = deployed_function()
    local_auth = auth.LocalAuth(function.region).start()
    mongo = start_mongo(local_auth.login())
    arn = f"arn:aws:lambda:{function.region}:123456789012:function:{function.function_name}"
    api = RuntimeAPI(function_arn=arn).start()
    log = Path(tempfile.mkdtemp(prefix="invoke-")) / "function.log"
    env = lambda_environment(
        api.address,
        SRC,
        HANDLER,
        _function_env(mongo, local_auth, function),
        function_name=function.function_name,
        memory_mb=function.memory_mb,
        region=function.region,
    )
    process = LambdaProcess(env, log)
    where = "embedded MongoDB" if mongo.embedded else "MONGODB_TEST_URI"
    print(
        f"{HANDLER} under awslambdaric as {function.function_name} ({function.memory_mb} MB, "
        f"{function.region}, service {function.service}), database: {where}"
    )
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
