"""The TLS view's summaries, ratios and checks (bench/tls.py measures it).

As for the rounds (bench/summary.py), each figure is the median over the rounds with its
min-max spread, and each ratio is taken within a round, where both sides ran side by side,
before it is summarised: counter-example / handler within each transport (TLS, plain), and
TLS / plain within each pattern. The checks are structural and must hold in every round:
they are the view's own, kept with it (modes.<mode>.tls.checks), not targets of the issue.
"""

from bench.stats import fmt, ratio, spread
from bench.summary import FIGURE_LABELS

TRANSPORT_LABELS = {"tls": "TLS", "plain": "plain"}
TLS_PATTERNS = ("handler", "counter_example", "floor")
TLS_FIGURE_LABELS = {  # every figure summarised over rounds, in report order
    **{name: FIGURE_LABELS[name] for name in ("get_p50_ms", "get_p95_ms", "post_p50_ms", "post_p95_ms")},
    "cold_start_ms": FIGURE_LABELS["cold_start_ms"],
    "conns_opened_per_1000": FIGURE_LABELS["conns_opened_per_1000"],
    "conns_opened_per_invocation": FIGURE_LABELS["conns_opened_per_invocation"],
    "monitor_conns_per_invocation": "monitoring connections opened per invocation",
    "pool_conns_per_invocation": "pool connections opened per invocation",
    "conns_opened_warm": FIGURE_LABELS["conns_opened_warm"],
    "conns_opened": "connections opened per environment (all its invocations)",
    "conns_with_tls": "of those, connections that negotiated TLS",
    "conns_live_end": FIGURE_LABELS["conns_live_end"],
    "credential_reads": FIGURE_LABELS["credential_reads"],
    "invocations": FIGURE_LABELS["invocations"],
    "errors": FIGURE_LABELS["errors"],
}
TLS_TIMINGS = ("get_p50_ms", "get_p95_ms", "post_p50_ms", "post_p95_ms", "cold_start_ms")
TLS_RATIOS = {
    "counter_example/handler": (*TLS_TIMINGS, "conns_opened_per_1000"),  # within each transport
    "tls/plain": TLS_TIMINGS,  # within each pattern
}
EVERY_ROUND = "every round"


def summarize_tls(view):
    """Add summary (transport -> pattern -> figure -> spread), ratios, tls_versions (version ->
    connections, every round) and checks to a measured view; a skipped one is left as it is."""
    if not view.get("rounds"):
        return view
    rounds = [rnd["transports"] for rnd in view["rounds"]]

    def values(transport, pattern, name):
        return [rnd[transport]["patterns"].get(pattern, {}).get(name) for rnd in rounds]

    def ratios(numerator, denominator, name):
        return spread([ratio(a, b) for a, b in zip(values(*numerator, name), values(*denominator, name), strict=True)])

    view["summary"] = {
        transport: {
            pattern: {name: spread(values(transport, pattern, name)) for name in TLS_FIGURE_LABELS}
            for pattern in TLS_PATTERNS
        }
        for transport in TRANSPORT_LABELS
    }
    view["ratios"] = {
        "counter_example/handler": {
            transport: {
                name: ratios((transport, "counter_example"), (transport, "handler"), name)
                for name in TLS_RATIOS["counter_example/handler"]
            }
            for transport in TRANSPORT_LABELS
        },
        "tls/plain": {
            pattern: {name: ratios(("tls", pattern), ("plain", pattern), name) for name in TLS_RATIOS["tls/plain"]}
            for pattern in TLS_PATTERNS
        },
    }
    versions = {}
    for rnd in rounds:
        for version, count in rnd["tls"]["tls_versions"].items():
            versions[version] = versions.get(version, 0) + count
    view["tls_versions"] = versions
    view["checks"] = tls_checks(view, values)
    return view


def _check(name, figure, met):
    return {"check": name, "figure": figure, "met": met, "judged_on": EVERY_ROUND}


def _per_round(figures):
    return "/".join(fmt(value) for value in figures)


def tls_checks(view, values):
    """The structural checks, each over every round (values: transport, pattern, figure -> per round)."""
    rounds = [rnd["transports"] for rnd in view["rounds"]]
    tls, plain = [rnd["tls"] for rnd in rounds], [rnd["plain"] for rnd in rounds]
    accepted, negotiated = sum(t["connections"] for t in tls), sum(t["conns_with_tls"] for t in tls)
    in_clear = sum(t["served_without_tls"] for t in tls)
    versions = ", ".join(f"{version} on {count}" for version, count in sorted(view["tls_versions"].items()))
    plain_accepted, plain_tls = sum(p["connections"] for p in plain), sum(p["conns_with_tls"] for p in plain)
    handler = {transport: values(transport, "handler", "conns_opened_per_1000") for transport in TRANSPORT_LABELS}
    handler_warm = sum(sum(values(transport, "handler", "conns_opened_warm")) for transport in TRANSPORT_LABELS)
    counter = {
        transport: min(values(transport, "counter_example", "conns_opened_per_invocation"))
        for transport in TRANSPORT_LABELS
    }
    failed = sum(sum(values(t, p, "errors")) for t in TRANSPORT_LABELS for p in TLS_PATTERNS)
    return [
        _check(
            "TLS negotiated on every connection the TLS replica set accepted",
            f"{negotiated} of {accepted} ({versions}); {in_clear} served without TLS",
            accepted > 0 and negotiated == accepted and in_clear == 0,
        ),
        _check(
            "no connection to the plain replica set negotiated TLS",
            f"{plain_tls} of {plain_accepted}",
            plain_accepted > 0 and plain_tls == 0,
        ),
        _check(
            "handler: connections per 1000 invocations the same over TLS as plain, none after its cold start",
            f"{_per_round(handler['tls'])} over TLS, {_per_round(handler['plain'])} plain (per round); "
            f"{handler_warm} opened after the first invocation",
            handler["tls"] == handler["plain"] and handler_warm == 0,
        ),
        _check(
            "counter-example: at least one connection opened per invocation, over TLS and plain",
            f"{fmt(counter['tls'])} over TLS, {fmt(counter['plain'])} plain (lowest round)",
            min(counter.values()) >= 1,
        ),
        _check("no invocation failed (every pattern, TLS and plain, every round)", str(failed), failed == 0),
    ]
