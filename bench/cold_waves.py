"""The cold-wave view: execution environments that start cold at once against Atlas's connection
rate limiter, side by side in one run.

Each wave is the rendered project's own `python -m tests.support.cold_wave` (its test support:
every environment a process of its own under awslambdaric, each reading its own credentials and
connecting over TLS to the local replica set, whose members admit new connections with mongod's
limiter), run in the project's folder, one after another. The scenarios, for the default
project (M10: 15 new connections a second per node):

- cold path: one environment and nothing queued, several times: what the budget's headroom for
  the cold path's own work (connection_budget.COLD_PATH_CPU_MS) was measured from;
- at the reserved concurrency (the derived bound), as deployed;
- the same with the monitors as they were before the budget set them (a 3 s connect timeout,
  the driver's 10 s heartbeat);
- the same with the limiter at the function's own share and no burst: what the budget assumes;
- the same with no queue at all (mongod's default queue depth), what a shallower Atlas gives;
- the bound a window widened by connecting during initialisation would give, without and with
  connecting there (docs/design-decisions.md says why the function does not);
- the old bound, reserved concurrency by connection counts alone (540 on M10): full runs only,
  and only with the memory for that many processes.
"""

import json
import subprocess
import sys
from pathlib import Path

import connection_budget  # the template's own derivation (python -m bench runs from its folder)
from bench.console import say

EARLY_CONNECT_MS = 5000  # database.EARLY_CONNECT_SECONDS: how long an initialisation may wait
MEMORY_PER_ENVIRONMENT_MB = 32  # measured: 540 scram environments peaked at about 15.6 GB


def _scenarios(budget, settings):
    reserved = budget["reserved_concurrency"]
    window = budget["cold_window_ms"] + EARLY_CONNECT_MS - budget["cold_path_ms"]
    widened = budget["new_connections_per_second"] * window // 1000 // budget["connections_per_environment_on_primary"]
    old_monitors = ["--uri-option", "connectTimeoutMS=3000", "--uri-option", "heartbeatFrequencyMS=10000"]
    share = budget["new_connections_per_second"]
    scenarios = [
        ("derived", "the reserved concurrency, as deployed", reserved, []),
        ("old_monitors", "the same, monitors of 3 s and a 10 s heartbeat", reserved, old_monitors),
    ]
    if settings.quick:
        return scenarios
    return [
        *scenarios,
        ("budget_share", f"the same, limiter at {share}/s with no burst", reserved,
         ["--rate", str(share), "--burst-seconds", str(1 / share)]),
        ("shallow_queue", "the same, no queue at Atlas", reserved, ["--max-queue-depth", "0"]),
        ("init_window", "a window widened by 5 s of initialisation, not used", widened, []),
        ("init_window_connected", "the same, connecting during initialisation", widened, ["--connect-in-init"]),
        ("connection_bound", "the old bound: connection counts alone", budget["environments_by_node"], []),
    ]  # fmt: skip


def _available_mb():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return None


def _wave(project, environments, arguments):
    command = [sys.executable, "-m", "tests.support.cold_wave", "--environments", str(environments), *arguments]
    completed = subprocess.run(command, cwd=project.path, capture_output=True, text=True, timeout=600, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"cold wave failed: {completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_cold_wave_view(project, settings):
    """The view's figures for one auth mode: the cold path, then every scenario's wave."""
    budget = json.loads((project.path / "tests" / "support" / "atlas_tier.json").read_text())["budget"]
    if budget["new_connections_per_second"] is None:
        return {"skipped": f"{budget['tier']} does not limit new connections per second"}
    mode = project.auth_mode
    no_limit = ["--rate", "1000000"]
    paths = [_wave(project, 1, no_limit)["last_ok_ms"] for _ in range(settings.cold_path_runs)]
    view = {
        "budget": budget,
        "cold_path": {
            "runs_ms": paths,
            "assumed_cpu_ms": connection_budget.COLD_PATH_CPU_MS[mode],
            "assumed_network_ms": connection_budget.COLD_PATH_NETWORK_MS,
        },
        "waves": {},
    }
    say(f"{mode} cold waves: the cold path alone took {sorted(paths)} ms (budgeted CPU at one vCPU: "
        f"{connection_budget.COLD_PATH_CPU_MS[mode]} ms)")  # fmt: skip
    for name, label, environments, arguments in _scenarios(budget, settings):
        available = _available_mb()
        if available is not None and environments * MEMORY_PER_ENVIRONMENT_MB > available:
            view["waves"][name] = {"label": label, "skipped": f"{environments} environments need more memory than "
                                   f"the {available} MB available"}  # fmt: skip
            say(f"{mode} cold wave {name}: skipped, {view['waves'][name]['skipped']}")
            continue
        figures = _wave(project, environments, arguments)
        view["waves"][name] = {"label": label, **figures}
        say(
            f"{mode} cold wave {name} ({environments} environments): {figures['ok']} answered 2xx, the last after "
            f"{figures['last_ok_ms']} ms (callers: {figures['last_ok_caller_ms']} ms); primary admitted "
            f"{figures['primary_admissions']} of {figures['primary_admissions_needed']} needed, "
            f"{figures['primary_abandoned']} abandoned in the queue"
        )
    return view
