"""The memory-size view: the rendered handler with the CPU share of each memory size.

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one full vCPU. Each
size gets a fresh environment of the handler started inside its own cgroup whose CFS
bandwidth quota is that share of one CPU (bench/cpuquota.py; the launcher's interpreter is
a two-line shell wrapper that joins the cgroup and then execs Python), so the cold start
pays for its imports at that share too. Then back-to-back warm GETs: their p50 and p95,
and the share of CFS periods in which the process was throttled. Only the handler's
process is limited, not the wire server, the Runtime API or the benchmark itself. The
order of the sizes rotates from round to round.
"""

from bench.console import say
from bench.cpuquota import vcpu_share
from bench.stats import fmt, percentile, spread

WARM_UP = 10  # invocations before measuring: the pool's connection and the caches are up


def memory_view(driver, settings, quota, mechanism):
    """settings.memory_rounds rounds over every size, a stage line each; the view's figures."""
    mode = driver.testbed.project.auth_mode
    say(f"memory-size view ({mode}): CPU quota with {mechanism}, sizes {list(settings.memory_sizes)} MB")
    per_size = {size: [] for size in settings.memory_sizes}
    errors = 0
    for index in range(settings.memory_rounds):
        results = {}
        for memory_mb in _rotated(settings.memory_sizes, index):
            results[memory_mb], failed = _one_size(driver, quota, memory_mb, settings.memory_invocations)
            errors += failed
        for size, figures in results.items():
            per_size[size].append(figures)
        say(
            f"  memory round {index + 1}/{settings.memory_rounds}: cold start / GET p50 / GET p95: "
            + ", ".join(
                f"{size} MB {fmt(results[size]['cold_start_ms'])} / {fmt(results[size]['get_p50_ms'])} / "
                f"{fmt(results[size]['get_p95_ms'])} ms"
                for size in settings.memory_sizes
            )
        )
    return {
        "auth_mode": mode,
        "mechanism": mechanism,
        "invocations": settings.memory_invocations,
        "rounds": settings.memory_rounds,
        "errors": errors,
        "sizes": [_point(size, runs) for size, runs in per_size.items()],
    }


def _rotated(sizes, round_index):
    shift = round_index % len(sizes)
    return list(sizes[shift:]) + list(sizes[:shift])


def _one_size(driver, quota, memory_mb, invocations):
    """(figures, failed invocations) of a fresh handler environment at this size's CPU share."""
    group = quota.create(memory_mb)
    python = quota.interpreter(group, driver.testbed.logs / f"python-in-cgroup-{memory_mb}.sh")
    environment = driver.spawn("handler", memory_mb=memory_mb, python=str(python))
    environment.pattern = f"handler@{memory_mb}MB"
    for i in range(WARM_UP):
        environment.invoke(driver.testbed.get_event(i))
    throttled_before, periods_before = quota.throttled(group)
    samples = []
    for i in range(invocations):
        result = environment.invoke(driver.testbed.get_event(i))
        if environment.succeeded(result, 200):
            samples.append(result.elapsed_ms)
    throttled, periods = quota.throttled(group)
    environment.stop()
    quota.remove(group)
    figures = {
        "cold_start_ms": environment.cold_start_ms,
        "get_p50_ms": percentile(samples, 50),
        "get_p95_ms": percentile(samples, 95),
        "throttled_periods": throttled - throttled_before,
        "periods": periods - periods_before,
        "samples": len(samples),
    }
    return figures, environment.errors


def _point(size, runs):
    """One size over the rounds: median and spread, and the share of periods throttled."""
    periods = sum(run["periods"] for run in runs)
    return {
        "memory_mb": size,
        "vcpu": vcpu_share(size),
        "get_p50_ms": spread([run["get_p50_ms"] for run in runs]),
        "get_p95_ms": spread([run["get_p95_ms"] for run in runs]),
        "cold_start_ms": spread([run["cold_start_ms"] for run in runs]),
        "throttled_share": (sum(run["throttled_periods"] for run in runs) / periods) if periods else 0.0,
    }
