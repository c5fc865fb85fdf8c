"""Many execution environments of the function at once, as Lambda runs a function that scales out:
each its own process, with its own interpreter and GIL, under the real runtime interface client
(awslambdaric), each with its own Runtime API (runtime_api.py).

    fleet = Fleet(env, log_dir, environments=72).start()   # env: lambda_environment()'s
    fleet.wait_ready(timeout=120)        # every environment initialised and asking for work
    results = fleet.invoke_all(event, timeout_ms=15000)    # each one's first request, all at once
    fleet.log_records()                  # every environment's JSON log lines
    fleet.stop()

The processes are forked by one launcher (`python -m tests.support.fleet`, reading its orders on
stdin) after it has imported the libraries the function uses, never the function itself: each
environment still runs its own initialisation (the handler module's import: settings, logger,
metrics, tracer, its auth module) and builds its own MongoClient, while the libraries' memory is
shared copy-on-write. So hundreds of environments fit in memory and start in seconds on a small
machine; one environment costs what Lambda's does at init minus the library imports. A library
missing from PRELOAD is simply imported by each environment itself. The launcher holds its stdin
open as a lifeline: when it closes (stop(), or the test process dies) every environment is killed.
"""

import concurrent.futures
import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.lambda_process import json_records
from tests.support.project import ROOT
from tests.support.runtime_api import InvocationResult, RuntimeAPI

# What the function imports (src/requirements.txt's packages), imported once by the launcher.
PRELOAD = (
    "pymongo",
    "bson",
    "aws_lambda_powertools",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.tracing",
    "aws_xray_sdk.core",
    "boto3",
    "botocore.session",
    "pymongo_auth_aws",
)


class Fleet:
    def __init__(self, env: dict[str, str], log_dir: Path, environments: int) -> None:
        self.env = dict(env)
        self.log_dir = Path(log_dir)
        self.apis = [RuntimeAPI() for _ in range(environments)]
        self._launcher: subprocess.Popen | None = None
        self.pids: list[int] = []

    def __len__(self) -> int:
        return len(self.apis)

    def log_path(self, index: int) -> Path:
        return self.log_dir / f"environment-{index:04d}.log"

    def start(self) -> "Fleet":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for api in self.apis:
            api.start()
        orders = {
            "handler": self.env["_HANDLER"],
            "environments": [
                {
                    "log": str(self.log_path(index)),
                    "env": {
                        "AWS_LAMBDA_RUNTIME_API": api.address,
                        "AWS_LAMBDA_LOG_STREAM_NAME": f"environment-{index:04d}",
                    },
                }
                for index, api in enumerate(self.apis)
            ],
        }
        self._launcher = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fleet"],
            env=self.env,
            cwd=ROOT,  # for `-m tests.support.fleet`; each environment works in its task root
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.log_dir / "launcher.log").open("ab"),
            start_new_session=True,  # the launcher and its environments: one process group
            text=True,
        )
        self._launcher.stdin.write(json.dumps(orders) + "\n")
        self._launcher.stdin.flush()
        self.pids = json.loads(self._launcher.stdout.readline() or "[]")
        if len(self.pids) != len(self.apis):
            raise RuntimeError(f"the launcher started {len(self.pids)} of {len(self.apis)}")
        return self

    def wait_ready(self, timeout: float) -> int:
        """Wait until every environment has initialised and asked for work; return how many
        have (all of them, unless the timeout passed first)."""
        deadline = time.monotonic() + timeout
        for api in self.apis:
            api.runtime_waiting.wait(max(0.0, deadline - time.monotonic()))
        return sum(api.runtime_waiting.is_set() for api in self.apis)

    def invoke_all(self, event: dict, timeout_ms: int) -> list[InvocationResult]:
        """One invocation per environment, released together; the results in environment order."""
        start = threading.Barrier(len(self.apis))

        def invoke(api: RuntimeAPI) -> InvocationResult:
            start.wait()
            return api.invoke(event, timeout_ms)

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.apis)) as pool:
            return list(pool.map(invoke, self.apis))

    def log_records(self) -> list[dict]:
        """Every environment's log lines that are JSON objects (Powertools records)."""
        records = []
        for index in range(len(self.apis)):
            path = self.log_path(index)
            records += json_records(path.read_text(errors="replace") if path.exists() else "")
        return records

    def stop(self) -> None:
        if self._launcher is not None:
            self._launcher.stdin.close()  # the lifeline: the launcher kills every environment
            try:
                self._launcher.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._launcher.pid, signal.SIGKILL)
                self._launcher.wait()
            self._launcher.stdout.close()
        # each server takes up to half a second to notice its shutdown: stop them together
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.apis)) as pool:
            list(pool.map(RuntimeAPI.stop, self.apis))


# ---- the launcher -------------------------------------------------------------------------------


def _environment(handler: str, log: str, env: dict[str, str]) -> None:
    """In a forked child: become one execution environment, as Lambda starts one."""
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.environ.update(env)
    os.chdir(os.environ["LAMBDA_TASK_ROOT"])
    sys.path[:] = [entry for entry in sys.path if entry != str(ROOT)]  # as Lambda's: no tests/
    try:
        from awslambdaric.__main__ import main

        main(["awslambdaric", handler])
    finally:
        os._exit(1)


def main() -> int:
    orders = json.loads(sys.stdin.readline())
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # not this auth mode's (e.g. boto3 in an IAM project): nothing to share
    gc.collect()
    gc.freeze()  # keep the shared pages shared: the children's collector leaves them alone
    pids = []
    for environment in orders["environments"]:
        pid = os.fork()
        if pid == 0:
            _environment(orders["handler"], environment["log"], environment["env"])
        pids.append(pid)
    print(json.dumps(pids), flush=True)
    sys.stdin.read()  # until the lifeline closes
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for pid in pids:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
