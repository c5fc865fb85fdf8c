"""The observability view: what each part of the handler's observability costs a warm GET.

Side by side, in alternating blocks as the rounds run (only the environment whose block it is
runs, the others frozen), per auth mode:

    handler             the rendered handler as deployed, every request's trace sampled
    unsampled           the same, no request sampled (Sampled=0: most requests in production,
                        where X-Ray samples about one request a second and 5% of the rest)
    command_traces      the same with a trace subsegment per database command switched on
                        (TRACE_DATABASE_COMMANDS=true, what README.md tells an operator to set)
    no_tracer           the tracer switched off (POWERTOOLS_TRACE_DISABLED=true)
    no_metrics          the metrics switched off (POWERTOOLS_METRICS_DISABLED=true)
    no_logger_context   without the logger's inject_lambda_context (bench/no_logger_context_handler.py)
    floor               the minimal handler (bench/floor_handler.py)

Each variant's warm GET /items/{id} p50, its ratio to the floor, and its difference from the
handler as deployed: what switching that part off saves (command_traces: what switching it on
costs). The router has no switch: it is the rest of the handler's distance to the floor. With
settings.instructions, each variant's CPU instructions per warm GET too, counted under callgrind
(bench/instructions.py): the same comparison without the machine's noise.
"""

import statistics

from bench.console import say
from bench.instructions import count_instructions, missing_tools
from bench.stats import percentile

VARIANTS = {
    "handler": ("handler", {}, True),
    "unsampled": ("handler", {}, False),
    "command_traces": ("handler", {"TRACE_DATABASE_COMMANDS": "true"}, True),
    "no_tracer": ("handler", {"POWERTOOLS_TRACE_DISABLED": "true"}, True),
    "no_metrics": ("handler", {"POWERTOOLS_METRICS_DISABLED": "true"}, True),
    "no_logger_context": ("no_logger_context", {}, True),
    "floor": ("floor", {}, True),
}
LABELS = {
    "handler": "handler as deployed (sampled)",
    "unsampled": "handler, trace not sampled",
    "command_traces": "handler + a subsegment per database command",
    "no_tracer": "handler without the tracer",
    "no_metrics": "handler without the metrics",
    "no_logger_context": "handler without the logger's Lambda context",
    "floor": "floor (minimal handler)",
}


def run_observability_view(driver, settings):
    """settings.observability_rounds rounds of every variant; per round, each one's GET p50."""
    mode = driver.testbed.project.auth_mode
    rounds = []
    for index in range(settings.observability_rounds):
        rounds.append(_round(driver, settings, index))
        handler, floor = rounds[-1]["handler"], rounds[-1]["floor"]
        say(
            f"{mode} observability round {index + 1}/{settings.observability_rounds}: GET p50 handler "
            f"{handler:.3f} ms, floor {floor:.3f} ms, "
            + ", ".join(f"{name} {rounds[-1][name]:.3f}" for name in VARIANTS if name not in ("handler", "floor"))
        )
    view = {"rounds": rounds, "summary": _summary(rounds)}
    view["instructions"] = _instructions(driver, settings, mode)
    return view


def _instructions(driver, settings, mode):
    """Each variant's CPU instructions per warm GET (bench/instructions.py), and each one's
    difference from the handler as deployed; or why they were not counted."""
    if not settings.instructions:
        return {"skipped": "not asked for (--instructions; a full run counts them)"}
    missing = missing_tools()
    if missing:
        return {"skipped": missing}
    say(f"{mode} observability: counting instructions per warm GET under callgrind")
    work = driver.testbed.logs.parent.parent / f"callgrind-{mode}"
    counts = count_instructions(driver, VARIANTS, settings.instruction_invocations, work)
    handler, floor = counts["handler"], counts["floor"]
    return {
        "invocations": settings.instruction_invocations,
        "per_get": counts,
        "over_floor": {name: count / floor for name, count in counts.items()},
        "minus_handler": {name: count - handler for name, count in counts.items()},
    }


def _round(driver, settings, index):
    names = list(VARIANTS)
    names = names[index % len(names) :] + names[: index % len(names)]
    driver.testbed.reset_collection()
    environments = {}
    for name in names:
        pattern, env, sampled = VARIANTS[name]
        environments[name] = driver.spawn(pattern, extra_env=env, sampled=sampled, name=f"observability-{name}")
        environments[name].freeze()
    gets = {name: [] for name in names}
    per_block = settings.observability_invocations // settings.blocks
    for _ in range(settings.blocks):
        for name in names:
            environment = environments[name]
            environment.thaw()
            for _ in range(per_block):
                result = environment.invoke(driver.testbed.get_event(environment.invocations))
                environment.invocations += 1
                if environment.succeeded(result, 200):
                    gets[name].append(result.elapsed_ms)
            environment.freeze()
    failures = {}
    for name, environment in environments.items():
        failures[name] = environment.errors
        environment.stop()
    figures = {name: percentile(samples, 50) for name, samples in gets.items()}
    return {**figures, "errors": failures}


def _summary(rounds):
    """Per variant: the median over rounds of its GET p50, its ratio to the floor and its
    difference from the handler as deployed, each taken within a round first."""
    summary = {}
    for name in VARIANTS:
        summary[name] = {
            "get_p50_ms": statistics.median(r[name] for r in rounds),
            "over_floor": statistics.median(r[name] / r["floor"] for r in rounds),
            "minus_handler_us": statistics.median((r[name] - r["handler"]) * 1000 for r in rounds),
        }
    return summary
