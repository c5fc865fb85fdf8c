"""CPU instructions per warm GET: the observability view's variants counted, not timed.

Wall-clock figures on a shared 2-core machine move by tens of microseconds from one round to the
next, as much as some of the parts measured. Instructions do not: valgrind's callgrind counts
every instruction the environment's process executes (the runtime client, the handler, the
driver; the server and the Runtime API run elsewhere), and the count is the same from run to run
within a fraction of a percent, however busy the machine is. Per variant the environment runs
under callgrind, serves WARM_UP GETs, then its counters are zeroed, `invocations` more GETs are
served and the counters are dumped (callgrind_control -z / -d): the dump's total divided by
`invocations` is the figure. It says where the CPU goes; the latency figures say what that costs.

Needs valgrind and callgrind_control on PATH; without them the view says it was skipped.
"""

import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

from bench.console import say

WARM_UP = 10
# Under callgrind a process runs some 50 times slower: its start-up and first request need longer
# than a normal invocation's timeout.
TIMEOUT_MS = 600_000
DUMP_WAIT_S = 30
START_UP_S = 300


def missing_tools():
    """Why the view cannot run here, or None."""
    absent = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    return f"{' and '.join(absent)} not on PATH" if absent else None


def count_instructions(driver, variants, invocations, work):
    """{name: instructions per warm GET} for each (pattern, extra_env, sampled) in variants."""
    work.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, (pattern, env, sampled) in variants.items():
        out = work / f"callgrind-{name}.out"
        for old in work.glob(f"{out.name}*"):
            old.unlink()
        wrapper = _python_under_callgrind(work / f"python-callgrind-{name}", out)
        environment = driver.spawn(
            pattern,
            extra_env=env,
            sampled=sampled,
            name=f"instructions-{name}",
            python=str(wrapper),
            timeout_ms=TIMEOUT_MS,
        )
        try:
            _wait_until_serving(driver, environment)
            for _ in range(WARM_UP):
                _get(driver, environment)
            subprocess.run(["callgrind_control", "-z", str(environment.pid)], capture_output=True, check=True)
            for _ in range(invocations):
                _get(driver, environment)
            before = set(work.glob(f"{out.name}*"))
            subprocess.run(["callgrind_control", "-d", str(environment.pid)], capture_output=True, check=True)
            counts[name] = _dumped_total(work, out, before) / invocations
        finally:
            environment.stop()
        say(f"  {name}: {counts[name]:,.0f} instructions per warm GET")
    return counts


def _python_under_callgrind(path: Path, out: Path) -> Path:
    """An interpreter that is this one under callgrind (LambdaProcess runs `<python> -m awslambdaric`)."""
    path.write_text(
        "#!/bin/sh\n"
        f'exec valgrind --tool=callgrind --callgrind-out-file="{out}" --dump-instr=no '
        f'--log-file="{out}.log" "{sys.executable}" "$@"\n',
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _wait_until_serving(driver, environment):
    """The Runtime API gives an environment Lambda's 10 s to take an event; under callgrind, on a
    busy machine, start-up can take longer: ask again until a GET is served."""
    deadline = time.monotonic() + START_UP_S
    while True:
        result = environment.invoke(driver.testbed.get_event(environment.invocations))
        environment.invocations += 1
        if result.status != "timeout" or time.monotonic() > deadline:
            break
    if result.status != "success":
        raise RuntimeError(f"{environment.pattern} did not start under callgrind: {result.status} {result.payload}")


def _get(driver, environment):
    result = environment.invoke(driver.testbed.get_event(environment.invocations))
    environment.invocations += 1
    if not environment.succeeded(result, 200):
        raise RuntimeError(f"{environment.pattern}: a warm GET failed under callgrind: {environment.error_samples[-1]}")


def _dumped_total(work, out, before):
    """The total of the dump callgrind_control -d made (a file not in `before`), once complete."""
    deadline = time.monotonic() + DUMP_WAIT_S
    while time.monotonic() < deadline:
        new = [path for path in work.glob(f"{out.name}.*") if path not in before and not path.name.endswith(".log")]
        total = _total(max(new, key=lambda path: path.stat().st_mtime)) if new else None
        if total is not None:
            return total
        time.sleep(0.2)
    raise RuntimeError(f"callgrind wrote no dump to {out}.* within {DUMP_WAIT_S} s")


def _total(path):
    """The dump's total instruction count (its `summary:` or `totals:` line), or None while incomplete."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return None
