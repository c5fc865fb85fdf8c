"""After a long idle: the network path to Atlas (a NAT gateway, a private endpoint's load balancer)
forgets connections idle for 350 s and resets them when they are next used, and pymongo cannot
tell, since it times idleness on the monotonic clock, which stops while Lambda freezes the
environment. The function measures the idle time on the wall clock and opens new connections
first when it exceeds MONGODB_IDLE_REFRESH_SECONDS (database.py), and /health sends its ping again
after a network error.

Here, under the real runtime client: the function reaches the embedded server through a proxy that
resets connections idle for PROXY_IDLE_SECONDS (tests/support/idle_reset.py), with its idle limit
set below that; the process is frozen (SIGSTOP) for longer, then thawed.
"""

import contextlib
import json
import os
import time

import pytest

from tests.conftest import REGION, function_environment
from tests.support import auth
from tests.support.idle_reset import IdleResetProxy
from tests.support.mongo import start_mongo
from tests.test_runtime import Runtime, start_function

pytestmark = pytest.mark.slow

PROXY_IDLE_SECONDS = 2.0  # the path's idle timeout, 350 s in AWS
IDLE_REFRESH_SECONDS = 1  # the function's limit, below the path's as template.yaml's 300 s is
FREEZE_SECONDS = 3  # longer than both; shorter than pymongo's maxIdleTimeMS (60 s), as a frozen
# monotonic clock would make any freeze look
# On Lambda the monotonic clock stops with the environment, so no monitor is due when it thaws; a
# stopped process's clock runs on, so the monitors here check rarely enough to stay asleep too.
HEARTBEAT_MS = 60_000
MONITOR_SETTLES_SECONDS = 1.0
PROMPT_MS = 1000  # a fresh connection here takes milliseconds; a wait for a monitor, 500 ms more
CONNECTIONS_CREATED = "MongoConnectionsCreated"
REFRESH = "Opening new connections after an idle period"


@contextlib.contextmanager
def behind_an_idle_reset_proxy(tmp_path, idle_refresh_seconds: int = IDLE_REFRESH_SECONDS):
    """The function in its own process, reaching a server of its own through the proxy."""
    if os.environ.get("MONGODB_TEST_URI"):
        pytest.skip("needs the embedded server behind the local proxy (MONGODB_TEST_URI is set)")
    local_auth = auth.LocalAuth(REGION).start()
    mongo = start_mongo(local_auth.login())
    proxy = IdleResetProxy(("127.0.0.1", mongo.port), PROXY_IDLE_SECONDS)
    env = function_environment(
        mongo, local_auth, "idle_tests", heartbeatFrequencyMS=HEARTBEAT_MS
    ) | {
        "POWERTOOLS_SERVICE_NAME": "items",
        "MONGODB_IDLE_REFRESH_SECONDS": str(idle_refresh_seconds),
    }
    env["MONGODB_URI"] = env["MONGODB_URI"].replace(f":{mongo.port}/", f":{proxy.port}/")
    api, process = start_function(tmp_path, env)
    try:
        yield Runtime(api, process, mongo, local_auth), proxy
    finally:
        process.stop()
        api.stop()
        proxy.close()
        local_auth.stop()
        mongo.close()


def connections_created(records: list[dict]) -> list[int]:
    """The MongoConnectionsCreated values the invocations published, in order (an embedded metric
    format record holds a metric's values as a list)."""
    return [sum(record[CONNECTIONS_CREATED]) for record in records if CONNECTIONS_CREATED in record]


def warm_then_frozen(runtime) -> str:
    """Serve a POST and a GET, then freeze the process for FREEZE_SECONDS; the item's path."""
    created = runtime.invoke("post-item")
    assert created.payload["statusCode"] == 201, runtime.process.logs()[-2000:]
    item = f"/items/{json.loads(created.payload['body'])['id']}"
    assert runtime.status("get-item", rawPath=item) == 200
    # a cold client's monitor checks again 0.5 s after its first check (pymongo's shortest
    # interval): let it, so that nothing but the function's own request runs after the thaw
    time.sleep(MONITOR_SETTLES_SECONDS)
    runtime.process.freeze()
    time.sleep(FREEZE_SECONDS)
    runtime.process.thaw()
    return item


def test_after_a_freeze_longer_than_the_paths_idle_timeout_the_first_requests_answer_promptly(
    tmp_path, figures
):
    with behind_an_idle_reset_proxy(tmp_path) as (runtime, proxy):
        item = warm_then_frozen(runtime)
        opened, published = (
            proxy.connections_opened,
            len(connections_created(runtime.process.log_records())),
        )
        health = runtime.invoke("health")
        found = runtime.invoke("get-item", rawPath=item)

        records = runtime.process.log_records()
        refreshes = [record.get("message") for record in records].count(REFRESH)
        new_connections = proxy.connections_opened - opened
        counted = connections_created(records)[published:]

    figures.values["after_a_freeze_behind_an_idle_reset"] = {
        "health": {"status": health.payload["statusCode"], "ms": round(health.elapsed_ms)},
        "get_item": {"status": found.payload["statusCode"], "ms": round(found.elapsed_ms)},
        "connections_opened": new_connections,
        "resets": proxy.resets,
        "connections_created_metric": counted,
    }
    assert health.payload["statusCode"] == 200, health.payload
    assert found.payload["statusCode"] == 200, found.payload
    assert health.elapsed_ms < PROMPT_MS and found.elapsed_ms < PROMPT_MS
    assert refreshes == 1
    # the new client's monitor and its pool's one connection, of which the metric counts the
    # pool's; the old client closes without a word on its dead connections
    assert new_connections == 2
    assert counted == [1]
    assert proxy.resets == 0


def test_without_the_refresh_health_sends_its_ping_again_after_the_reset(tmp_path, figures):
    """The second line of defence, for a path that resets sooner than the function refreshes:
    /health's ping is a command, which pymongo does not retry, so the function does, once."""
    with behind_an_idle_reset_proxy(tmp_path, idle_refresh_seconds=3600) as (runtime, proxy):
        warm_then_frozen(runtime)
        health = runtime.invoke("health", timeout_ms=3000)
        messages = [record.get("message") for record in runtime.process.log_records()]
    figures.values["health_after_a_reset_without_the_refresh"] = {
        "status": health.payload["statusCode"],
        "ms": round(health.elapsed_ms),
        "resets": proxy.resets,
    }
    assert health.payload["statusCode"] == 200, health.payload
    assert proxy.resets >= 1  # the first ping went out on a forgotten connection
    assert REFRESH not in messages
