"""The headline: a few sentences with the figures a README quotes.

Each is a median over rounds; ratios also show their min-max spread over the rounds.
"""

from bench.stats import DASH, fmt


def _times(summary, digits=2):
    """'8.7x (7.2-9.5)' for a ratio summary."""
    if not summary or summary.get("median") is None:
        return "—"
    text = f"{fmt(summary['median'], digits)}x"
    if summary["n"] > 1 and summary["min"] != summary["max"]:
        text += f" ({fmt(summary['min'], digits)}{DASH}{fmt(summary['max'], digits)})"
    return text


def headline(results):
    """A few sentences with the figures a README quotes (median over rounds, min-max spread)."""
    modes = results["modes"]
    lines = [_connections(modes)]
    lines += [_warm_get(mode, data) for mode, data in modes.items()]
    lines.append(_memory(modes))
    lines += _cold_start(modes)
    lines += [_load(mode, data["load"]) for mode, data in modes.items() if data.get("load")]
    lines += [_tls(mode, data["tls"]) for mode, data in modes.items() if (data.get("tls") or {}).get("rounds")]
    lines += _memory_sizes(results.get("memory_sizes") or {})
    return lines


def _connections(modes):
    per_mode = []
    for mode, data in modes.items():
        h, c = data["summary"]["handler"], data["summary"]["counter_example"]
        per_mode.append(
            f"{mode}: {fmt(h['conns_opened_per_1000']['median'])} by the handler, "
            f"{fmt(c['conns_opened_per_invocation']['median'])} per invocation by the counter-example"
        )
    return "Connections opened per 1,000 invocations of one environment: " + "; ".join(per_mode) + "."


def _warm_get(mode, data):
    r, s = data["ratios"], data["summary"]
    noop = s.get("noop", {}).get("get_p50_ms")
    return (
        f"Warm GET /items/{{id}} p50, auth_mode={mode}: counter-example / handler "
        f"{_times(r['counter_example/handler']['get_p50_ms'], 1)}, handler / floor "
        f"{_times(r['handler/floor']['get_p50_ms'])} (handler "
        f"{fmt(s['handler']['get_p50_ms']['median'])} ms, counter-example "
        f"{fmt(s['counter_example']['get_p50_ms']['median'])} ms, floor "
        f"{fmt(s['floor']['get_p50_ms']['median'])} ms"
        + (f"; the runtime path alone, a no-op handler, takes {fmt(noop['median'])} ms of each)." if noop else ").")
    )


def _memory(modes):
    memory = [
        f"{mode}: +{fmt(data['summary']['handler']['rss_growth_pct']['median'])}% from invocation 100 to 1,000, "
        f"peak {fmt(data['summary']['handler']['rss_peak_mb']['median'], 0)} MB"
        for mode, data in modes.items()
    ]
    return "Resident memory of the handler: " + "; ".join(memory) + "."


def _cold_start(modes):
    cold = [
        f"{_times(data['ratios']['handler/counter_example']['cold_start_ms'])} ({mode})"
        for mode, data in modes.items()
        if data["ratios"]["handler/counter_example"]["cold_start_ms"]["n"]
    ]
    return ["Cold start of the handler / the counter-example's: " + ", ".join(cold) + "."] if cold else []


def _load(mode, load):
    return (
        f"Load ({mode}): {load['environments']} environments wrote {load['acknowledged_writes']} documents "
        f"in parallel, {load['acknowledged_writes_stored']} of them stored, {load['failed_invocations']} "
        f"failed, at most {load['peak_live_connections']} connections live (bound "
        f"{load['connection_bound']})."
    )


def _tls(mode, view):
    s, r = view["summary"], view["ratios"]
    h, c = {t: s[t]["handler"] for t in ("tls", "plain")}, {t: s[t]["counter_example"] for t in ("tls", "plain")}
    checks = {check["check"]: check for check in view["checks"]}
    negotiated = next(check for name, check in checks.items() if name.startswith("TLS negotiated"))
    return (
        f"TLS vs plain ({mode}, the local {view['members']}-member replica set): warm GET /items/{{id}} p50 "
        f"counter-example / handler {_times(r['counter_example/handler']['tls']['get_p50_ms'], 1)} over TLS, "
        f"{_times(r['counter_example/handler']['plain']['get_p50_ms'], 1)} plain; TLS / plain "
        f"{_times(r['tls/plain']['handler']['get_p50_ms'])} for the handler ({fmt(h['tls']['get_p50_ms']['median'])} "
        f"vs {fmt(h['plain']['get_p50_ms']['median'])} ms), {_times(r['tls/plain']['counter_example']['get_p50_ms'])} "
        f"for the counter-example ({fmt(c['tls']['get_p50_ms']['median'])} vs "
        f"{fmt(c['plain']['get_p50_ms']['median'])} ms). Connections per 1,000 invocations: handler "
        f"{fmt(h['tls']['conns_opened_per_1000']['median'])} over TLS and "
        f"{fmt(h['plain']['conns_opened_per_1000']['median'])} plain, counter-example "
        f"{fmt(c['tls']['conns_opened_per_1000']['median'])} ("
        f"{fmt(c['tls']['monitor_conns_per_invocation']['median'])} monitoring + "
        f"{fmt(c['tls']['pool_conns_per_invocation']['median'])} pool per call). TLS: {negotiated['figure']}."
    )


def _memory_sizes(view):
    sizes = view.get("sizes") or []
    if len(sizes) < 2:
        return []
    low, high = sizes[0], sizes[-1]
    return [
        f"Memory size ({view['auth_mode']}): cold start "
        f"{fmt(low['cold_start_ms']['median'], 0)} ms at {low['memory_mb']} MB vs "
        f"{fmt(high['cold_start_ms']['median'], 0)} ms at {high['memory_mb']} MB; warm GET p95 "
        f"{fmt(low['get_p95_ms']['median'])} ms vs {fmt(high['get_p95_ms']['median'])} ms."
    ]
