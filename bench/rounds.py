"""The rounds: every pattern in its own environment, driven side by side, and their figures.

Per auth mode, one MongoDB wire server (or MONGODB_TEST_URI) and what the auth mode needs
(the rendered project's tests/support/auth.py: for iam a local STS that checks every
MONGODB-AWS login, for scram a Secrets Manager) serve three execution environments started from
the rendered project's own test support:

    handler          the rendered handler (<package>.app.handler)
    counter_example  bench/counter_example_handler.py: same routes, new client per call
    floor            bench/floor_handler.py: one global client, the same read, nothing else

plus `direct`, the same read and write done with pymongo in this process, and `noop`, the
runtime path alone, both for reference.

A round starts a fresh environment of each pattern (that is the cold start), then runs
their warm invocations in short alternating blocks: only the environment whose block it is
runs, the others are frozen with SIGSTOP as Lambda freezes idle environments. So whatever
the server sees opened, and whatever Secrets Manager serves, during a block belongs to
that environment, and machine noise is spread over every pattern alike. The order of the
patterns rotates from round to round.
"""

import statistics
import time

from bson import ObjectId

from bench.console import say
from bench.sampling import live_connections, peak_rss_mb
from bench.stats import fmt, percentile

PATTERNS = ("handler", "counter_example", "floor")


def run_rounds(driver, settings):
    """settings.rounds rounds, a stage line after each; their figures."""
    mode = driver.testbed.project.auth_mode
    rounds = []
    for index in range(settings.rounds):
        figures = run_round(driver, settings, index)
        rounds.append(figures)
        say(_round_line(mode, index, settings.rounds, figures["patterns"]))
    return rounds


def _round_line(mode, index, rounds, figures):
    h, c, f = figures["handler"], figures["counter_example"], figures["floor"]
    return (
        f"{mode} round {index + 1}/{rounds}: GET p50 handler {fmt(h['get_p50_ms'])} ms, "
        f"counter-example {fmt(c['get_p50_ms'])} ms, floor {fmt(f['get_p50_ms'])} ms; "
        f"connections opened handler {h['conns_opened']}/{h['invocations']} calls, "
        f"counter-example {c['conns_opened']}/{c['invocations']}; cold start handler {fmt(h['cold_start_ms'])} ms"
    )


def run_round(driver, settings, index):
    """Round `index`: cold starts, then the warm blocks side by side; every pattern's figures."""
    order = list(PATTERNS[index % 3 :] + PATTERNS[: index % 3])
    driver.testbed.reset_collection()
    imports, colds = _extra_cold_starts(driver, order, settings.cold_starts)
    environments = {}
    for pattern in order:
        environments[pattern] = driver.spawn(pattern)
        colds[pattern].append(environments[pattern].cold_start_ms)
        environments[pattern].freeze()
    # The runtime path alone, for reference: what every pattern pays before its own work.
    environments["noop"] = driver.spawn("noop")
    environments["noop"].freeze()
    imports["noop"], colds["noop"] = [None], [environments["noop"].cold_start_ms]
    direct = _warm_blocks(driver, settings, order, environments)
    figures = {}
    for pattern, environment in environments.items():
        environment.thaw()
        time.sleep(0.05)
        figures[pattern] = _figures(environment, imports[pattern], colds[pattern], driver.testbed)
        environment.stop()
    figures["direct"] = {**direct, **latencies(direct["get_ms"], direct["post_ms"])}
    return {"round": index + 1, "order": order, "patterns": figures}


def _extra_cold_starts(driver, order, cold_starts):
    """Every import time, and all but the last cold start (the environment measured warm).

    Cold starts and imports are single, noisy samples: take several, interleaved.
    """
    imports = {pattern: [] for pattern in order}
    colds = {pattern: [] for pattern in order}
    for _ in range(cold_starts - 1):
        for pattern in order:
            imports[pattern].append(driver.import_time_ms(pattern))
            extra = driver.spawn(pattern)
            colds[pattern].append(extra.cold_start_ms)
            extra.stop()
    for pattern in order:
        imports[pattern].append(driver.import_time_ms(pattern))
    time.sleep(0.3)  # the probes' own connections close before counting starts
    return imports, colds


def _warm_blocks(driver, settings, order, environments):
    """Each pattern's warm calls in settings.blocks blocks, the direct pymongo calls between them."""
    s = settings
    calls = {  # warm calls per environment: its first call was the cold start
        "handler": s.handler_invocations - 1,
        "floor": s.handler_invocations - 1,
        "counter_example": s.counter_invocations - 1,
        "noop": s.counter_invocations - 1,
    }
    direct = {"get_ms": [], "post_ms": []}
    for block in range(s.blocks):
        for pattern in [*order, "noop"]:
            share = calls[pattern] // s.blocks + (1 if block < calls[pattern] % s.blocks else 0)
            driver.run_block(environments[pattern], share)
        per_block = s.direct_invocations // s.blocks
        _direct_block(driver.testbed, direct, per_block, block * per_block)
    return direct


def _direct_block(testbed, samples, count, start):
    """The same read and write with pymongo in this process, no Lambda runtime."""
    for i in range(start, start + count):
        if i % 2 == 0:
            began = time.perf_counter()
            testbed.items.find_one({"_id": ObjectId(testbed.ids[i % len(testbed.ids)])})
            samples["get_ms"].append(round((time.perf_counter() - began) * 1000, 4))
        else:
            document = testbed.document(pattern="direct", n=i)
            began = time.perf_counter()
            testbed.items.insert_one(document)
            samples["post_ms"].append(round((time.perf_counter() - began) * 1000, 4))


def served(environment):
    """What every pattern's figures start with: how many invocations, which failed, the latencies."""
    return {
        "invocations": environment.invocations,
        "errors": environment.errors,
        "error_samples": environment.error_samples,
        "get_ms": environment.get_ms,
        "post_ms": environment.post_ms,
        **latencies(environment.get_ms, environment.post_ms),
    }


def latencies(get_ms, post_ms):
    return {
        "get_p50_ms": percentile(get_ms, 50),
        "get_p95_ms": percentile(get_ms, 95),
        "post_p50_ms": percentile(post_ms, 50),
        "post_p95_ms": percentile(post_ms, 95),
    }


def _figures(environment, import_samples, cold_samples, testbed):
    """One environment's figures for the round, from its latencies and its counters."""
    n = environment.invocations
    if n >= 1000:
        per_1000 = environment.opened_at.get(1000, environment.opened)
        reads_1000 = environment.credential_reads_at.get(1000, environment.credential_reads)
    else:
        per_1000 = environment.opened * 1000 / n
        reads_1000 = None  # reads do not scale with calls (cached): see credential_reads instead
    rss_100, rss_1000 = environment.rss_at.get(100), environment.rss_at.get(1000)
    growth = (rss_1000 - rss_100) / rss_100 * 100 if rss_100 and rss_1000 else None
    opened_after_first = environment.opened - (environment.conn_series[0][1] if environment.conn_series else 0)
    imports = [value for value in import_samples if value is not None]
    return {
        **served(environment),
        "cold_start_ms": statistics.median(cold_samples),
        "cold_start_samples_ms": cold_samples,
        "import_ms": statistics.median(imports) if imports else None,
        "import_samples_ms": import_samples,
        "conns_opened": environment.opened,
        "conns_opened_warm": opened_after_first,
        "conns_opened_per_1000": per_1000,
        "conns_opened_per_invocation": environment.opened / n,
        "conns_live_end": live_connections(environment.pid, testbed.port) if testbed.port else None,
        "rss_100_mb": rss_100,
        "rss_1000_mb": rss_1000,
        "rss_growth_pct": growth,
        "rss_peak_mb": peak_rss_mb(environment),
        "credential_reads": environment.credential_reads,
        "credential_reads_per_1000": reads_1000,
        "credential_reads_per_invocation": environment.credential_reads / n,
        "conn_series": environment.conn_series,
        "rss_series": environment.rss_series,
    }
