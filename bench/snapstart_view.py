"""The SnapStart view: a cold start with and without the share a snapshot takes over, side by side.

Both run the rendered function under awslambdaric against the same test bed (bench/testbed.py):

on demand   Lambda starts the process and initialises it (the interpreter, the runtime client, the
            handler module's imports and start-up), then sends the first request, which connects.
snap_start  the same initialisation with AWS_LAMBDA_INITIALIZATION_TYPE=snap-start and the
            handler a snap_start=yes project deploys (<package>.snapshot.handler), ending with the
            before-snapshot hooks: Lambda does all of it when it publishes a version, not in a
            request's cold start. Then the runtime is "restored" (the Runtime API answers
            /runtime/restore/next): the after-restore hooks run and the first request connects.
            That is what a restored environment still spends here; Lambda's own restore of the
            snapshot (Restore Duration, outside the process) cannot be measured without AWS.

The snapshot module is the template's own file, copied beside the default project's package (a
snap_start=yes project has exactly that file more in src/, and the post-gen hook keeps it as is),
so no second project is rendered. Each pattern starts `runs` environments, one at a time.
"""

import shutil
import time

from bench.project import ROOT
from bench.stats import spread

SNAPSHOT_MODULE = ROOT / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}" / "snapshot.py"
WAIT_S = 30
PHASES = {
    "on_demand": ("init_ms", "first_request_ms", "cold_start_ms"),
    "snap_start": ("snapshot_init_ms", "restore_ms", "first_request_ms", "cold_start_ms"),
}


def _snap_start_src(project, work):
    """A copy of the project's src/ with the snapshot module in its package, as snap_start=yes has it."""
    src = work / f"snapstart-src-{project.auth_mode}"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(project.src, src, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SNAPSHOT_MODULE, src / project.package / "snapshot.py")
    return src


def _start(driver, env, name):
    support = driver.testbed.project.support
    api = support["runtime_api"].RuntimeAPI(sampled=False).start()
    env = env | {"AWS_LAMBDA_RUNTIME_API": api.address}
    log = driver.testbed.logs / f"{name}-{time.monotonic_ns()}.log"
    process = support["lambda_process"].LambdaProcess(env, log)
    return api, process


def _first_request(driver, api):
    result = api.invoke(driver.testbed.get_event(0), timeout_ms=15_000)
    payload = result.payload if isinstance(result.payload, dict) else {}
    if result.status != "success" or payload.get("statusCode") != 200:
        raise RuntimeError(f"the first request failed: {result.status} {str(result.payload)[:300]}")
    return result.elapsed_ms


def _wait(event, what, process):
    if not event.wait(WAIT_S):
        raise RuntimeError(f"no {what} within {WAIT_S} s: {process.logs()[-500:]}")


def _on_demand(driver):
    api, process = _start(driver, driver.lambda_env("handler"), "on-demand")
    started = time.monotonic()
    try:
        process.start()
        _wait(api.runtime_waiting, "start-up", process)
        init = (time.monotonic() - started) * 1000
        first = _first_request(driver, api)
    finally:
        api.stop()
        process.stop()
    return {"init_ms": init, "first_request_ms": first, "cold_start_ms": init + first}


def _snap_start(driver, src):
    project = driver.testbed.project
    env = driver.lambda_env("handler") | {
        "_HANDLER": f"{project.package}.snapshot.handler",
        "LAMBDA_TASK_ROOT": str(src),
        "LAMBDA_RUNTIME_DIR": str(src),
        "PYTHONPATH": str(src),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
    }
    api, process = _start(driver, env, "snap-start")
    started = time.monotonic()
    try:
        process.start()
        _wait(api.snapshot_taken, "snapshot", process)
        snapshot = (time.monotonic() - started) * 1000
        restored = time.monotonic()
        api.restore()
        _wait(api.runtime_waiting, "restore", process)
        restore = (time.monotonic() - restored) * 1000
        first = _first_request(driver, api)
    finally:
        api.stop()
        process.stop()
    return {
        "snapshot_init_ms": snapshot,
        "restore_ms": restore,
        "first_request_ms": first,
        "cold_start_ms": restore + first,
    }


def run_snapstart_view(driver, settings, work):
    """`cold_starts` x `rounds` environments of each pattern, alternating; each phase's spread."""
    src = _snap_start_src(driver.testbed.project, work)
    runs = max(3, settings.cold_starts * settings.rounds)
    samples = {"on_demand": [], "snap_start": []}
    for _ in range(runs):
        samples["on_demand"].append(_on_demand(driver))
        samples["snap_start"].append(_snap_start(driver, src))
    summary = {
        pattern: {phase: spread([run[phase] for run in runs_]) for phase in PHASES[pattern]}
        for pattern, runs_ in samples.items()
    }
    return {"runs": runs, "samples": samples, "summary": summary}
