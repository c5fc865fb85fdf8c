"""SnapStart's restore, simulated: several execution environments from one initialised process.

    outcome = simulate(env, tmp_path, environments=3, writes=5)            # with the hooks
    outcome = simulate(env, tmp_path, environments=3, writes=5, hooks=False)  # the control
    outcome = simulate(env, tmp_path, environments=2, writes=1, prime=True)  # handler in init
    outcome.environments        # one dict per environment: its answers (status, body), its
                                # first ObjectId, its random draw, the records it printed
    outcome.snapshot_at         # wall-clock time the before-snapshot hooks had run
    outcome.parent              # what the parent saw before and after those hooks

env is the function's environment (lambda_process.lambda_environment); the simulation runs in a
process of its own, `python -m tests.support.restore`, with the project root on PYTHONPATH.

The parent initialises as Lambda does before a snapshot: it imports the handler's module
(snapshot.py, which registers the hooks; app.py for the control, as a project without them),
creates the MongoClient during initialisation as a provisioned environment does
(database.connect_early), with prime=True runs the handler once (GET /health) as a function that
warms its code paths during initialisation would, and runs the before-snapshot hooks with
awslambdaric's own runner (lambda_runtime_hooks_runner). Then it forks one child per environment.

A restore keeps the process id, a fork does not: each child first records its own pid as the one
bson drew its ObjectId state for (ObjectId._pid), so bson sees what a restored environment's bson
sees and renews nothing by itself; and it takes back the parent's state of Python's `random`,
which CPython reseeds in a forked child (os.register_at_fork) and a restore leaves as it was.
pymongo's own check of the pid is left alone: a client that outlived the snapshot (the control)
gets new pools and sessions in a child, which a restore would not give it, so the control shows
the repeated _ids and not the repeated session ids (the hooks close the client before the
snapshot, so with them no child has one either way). Each child runs the after-restore hooks
(awslambdaric's runner), waits for a wall-clock instant shared by all, so that their ObjectIds
fall in the same second, and posts `writes` items through the handler, one after the other; its
answers go to <out>/<n>.json and what it printed (the metrics) to <out>/<n>.log.
"""

import argparse
import importlib
import json
import math
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.lambda_process import json_records
from tests.support.project import EVENTS, PACKAGE, ROOT

# How long after the last fork the children start writing (at least): time for every child to be
# scheduled and run its hooks on a loaded 2-core machine.
START_MARGIN_S = 1.0


@dataclass
class Outcome:
    environments: list[dict]
    snapshot_at: float
    parent: dict


def simulate(
    env: dict[str, str],
    out: Path,
    *,
    environments: int,
    writes: int,
    hooks: bool = True,
    prime: bool = False,
) -> Outcome:
    """Run the simulation in its own process; its outcome once every environment has written."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tests.support.restore", str(out)]
    command += ["--environments", str(environments), "--writes", str(writes)]
    command += [] if hooks else ["--no-hooks"]
    command += ["--prime"] if prime else []
    variables = env | {"PYTHONPATH": os.pathsep.join([env["LAMBDA_TASK_ROOT"], str(ROOT)])}
    done = subprocess.run(
        command, env=variables, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    parent = json.loads((out / "parent.json").read_text())
    found = []
    for number in range(environments):
        child = json.loads((out / f"{number}.json").read_text())
        child["records"] = json_records((out / f"{number}.log").read_text())
        found.append(child)
    return Outcome(found, parent["snapshot_at"], parent)


class Context:
    """The attributes of Lambda's context object that the function and Powertools read."""

    function_name = "restored"
    function_version = "1"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:restored:live"
    log_group_name = "/aws/lambda/restored"
    log_stream_name = "local"

    def __init__(self, timeout_ms: int = 5000) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def post_event(sku: str) -> dict:
    event = json.loads((EVENTS / "post-item.json").read_text())
    event["body"] = json.dumps({"sku": sku, "name": "Restored mug", "quantity": 1})
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def _environment(number: int, out: Path, start_at: float, writes: int, state: tuple) -> None:
    """One restored environment (a forked child); never returns."""
    status = 1
    try:
        log = os.open(out / f"{number}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)  # what the function prints (its logger, its metrics) goes to its own log
        os.dup2(log, 2)
        from awslambdaric import lambda_runtime_hooks_runner
        from bson.objectid import ObjectId

        ObjectId._pid = os.getpid()  # the snapshot's pid, as bson sees it after a restore
        random.setstate(state)  # the snapshot's random state, as a restore leaves it
        lambda_runtime_hooks_runner.run_after_restore()
        restored_at, draw = time.time(), random.random()  # noqa: S311 - its state
        app = sys.modules[f"{PACKAGE}.app"]
        time.sleep(max(0.0, start_at - time.time()))
        answers = []
        for write in range(writes):
            response = app.handler(post_event(f"env{number}-{write}"), Context())
            answers.append({"status": response["statusCode"], "body": json.loads(response["body"])})
        result = {
            "pid": os.getpid(),
            "restored_at": restored_at,
            "answers": answers,
            "random": draw,
        }
        (out / f"{number}.json").write_text(json.dumps(result))
        status = 0
    finally:
        sys.stdout.flush()
        os._exit(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.restore")
    parser.add_argument("out", type=Path)
    parser.add_argument("--environments", type=int, default=3)
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--no-hooks", dest="hooks", action="store_false")
    parser.add_argument("--prime", action="store_true")
    args = parser.parse_args(argv)

    from awslambdaric import lambda_runtime_hooks_runner

    importlib.import_module(f"{PACKAGE}.snapshot" if args.hooks else f"{PACKAGE}.app")
    app = sys.modules[f"{PACKAGE}.app"]
    database = sys.modules[f"{PACKAGE}.database"]
    database.connect_early(app.settings)  # the client created during initialisation
    parent = {"client_during_init": database._client is not None}
    if args.prime:
        health = json.loads((EVENTS / "health.json").read_text())
        parent["primed"] = app.handler(health, Context())["statusCode"]
    lambda_runtime_hooks_runner.run_before_snapshot()
    parent |= {"snapshot_at": time.time(), "client_after_hooks": database._client is not None}
    sys.stdout.flush()
    sys.stderr.flush()

    start_at = math.floor(time.time() + START_MARGIN_S) + 1.05  # a whole second, all of them
    state = random.getstate()
    children = []
    for number in range(args.environments):
        pid = os.fork()
        if pid == 0:
            _environment(number, args.out, start_at, args.writes, state)
        children.append(pid)
    failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
    parent["failed_children"] = len(failed)
    (args.out / "parent.json").write_text(json.dumps(parent))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
