"""The TLS view: every pattern served by a replica set over TLS and without, side by side.

On Atlas every connection is TLS, to a replica set: a new client opens a monitoring
connection to each member and a pool connection to the primary, and each pays TCP, the TLS
handshake and (the pool one) authentication. Per auth mode the view starts the rendered
project's local replica set twice (bench/tls_testbed.py), with TLS and without, and runs
the three patterns of the rounds (bench/rounds.py) against each: six execution environments
per round, handler, counter-example and floor, over TLS and plain.

A round spawns the six in turn (each one's cold start), then runs their warm invocations in
alternating blocks as the rounds do: only the environment whose block it is runs, the others
are frozen. Each pattern's TLS block and plain block are next to each other, so the same
machine noise falls on both; the pattern order rotates from round to round and which of TLS
and plain goes first alternates. Every connection the members accept while an environment
runs is charged to it, with its record: the TLS version it negotiated, and whether it was a
monitor (hello only) or a pool connection (authentication, reads, writes).
"""

import collections
import os
import time

from bench.console import say
from bench.environment import Driver
from bench.rounds import PATTERNS, served
from bench.sampling import live_connections
from bench.stats import fmt
from bench.tls_testbed import ReplicaSetTestbed

TRANSPORTS = ("tls", "plain")
# Charging a connection to the environment that opened it: after a cold start, wait until the
# members have accepted nothing new for COLD_QUIET_S (the monitors of the other members connect
# in the background); after an environment is frozen, for FROZEN_QUIET_S (a connect it sent
# before the freeze is still accepted); never longer than SETTLE_CAP_S.
COLD_QUIET_S, FROZEN_QUIET_S, SETTLE_CAP_S = 0.1, 0.03, 2.0


def run_tls_view(project, settings, work, local_auth=None):
    """settings.tls_rounds rounds against the replica set with TLS and without; their figures."""
    if os.environ.get("MONGODB_TEST_URI"):
        return {"skipped": "MONGODB_TEST_URI is set: the view needs the local replica set, with and without TLS"}
    mode = project.auth_mode
    beds = {}
    try:
        for transport in TRANSPORTS:
            beds[transport] = ReplicaSetTestbed(
                project, settings.seed_documents, work, tls=transport == "tls", local_auth=local_auth
            )
        drivers = {transport: Driver(bed) for transport, bed in beds.items()}
        members = len(beds["tls"].mongo.members)
        say(f"{mode} TLS view: the local replica set ({members} members) with TLS and without, side by side")
        rounds = []
        for index in range(settings.tls_rounds):
            rounds.append(run_tls_round(drivers, settings, index))
            say(_round_line(mode, index, settings.tls_rounds, rounds[-1]))
    finally:
        for bed in beds.values():
            bed.close()
    return {"members": members, "uri_options": _uri_options(beds), "rounds": rounds}


def _uri_options(beds):
    """What each replica set's URI adds to the hosts (the CA file's temporary path left out)."""
    options = {}
    for transport, bed in beds.items():
        query = bed.uri.partition("?")[2].split("&")
        options[transport] = "&".join(pair for pair in query if not pair.lower().startswith("tlscafile="))
    return options


def run_tls_round(drivers, settings, index):
    """Round `index`: six cold starts, then the warm blocks side by side; every environment's figures."""
    patterns = PATTERNS[index % 3 :] + PATTERNS[: index % 3]
    transports = TRANSPORTS if index % 2 == 0 else TRANSPORTS[::-1]
    order = [(transport, pattern) for pattern in patterns for transport in transports]
    for driver in drivers.values():
        driver.testbed.reset_collection()
    marks = {transport: driver.testbed.mongo.mark() for transport, driver in drivers.items()}
    environments, records, cold = {}, {}, {}
    for transport, pattern in order:
        server = drivers[transport].testbed.mongo
        mark = server.mark()
        environment = drivers[transport].spawn(pattern)
        _settle(server, COLD_QUIET_S)
        environment.freeze()
        _settle(server, FROZEN_QUIET_S)
        cold[transport, pattern] = server.records_since(mark)
        records[transport, pattern] = list(cold[transport, pattern])
        environments[transport, pattern] = environment
    _warm_blocks(drivers, settings, order, environments, records)
    figures = {transport: {} for transport in TRANSPORTS}
    for (transport, pattern), environment in environments.items():
        environment.thaw()
        time.sleep(0.05)
        bed = drivers[transport].testbed
        figures[transport][pattern] = _figures(environment, records[transport, pattern], cold[transport, pattern], bed)
        environment.stop()
    accepted = {transport: drivers[transport].testbed.mongo.records_since(marks[transport]) for transport in TRANSPORTS}
    return {
        "round": index + 1,
        "order": [f"{pattern}/{transport}" for transport, pattern in order],
        "transports": {
            transport: {"patterns": figures[transport], **_transport_figures(accepted[transport])}
            for transport in TRANSPORTS
        },
    }


def _warm_blocks(drivers, settings, order, environments, records):
    """Each environment's warm calls in settings.tls_blocks blocks; the connections each block opened."""
    s = settings
    calls = {"handler": s.tls_handler_invocations - 1, "floor": s.tls_handler_invocations - 1}
    calls["counter_example"] = s.tls_counter_invocations - 1
    for block in range(s.tls_blocks):
        for transport, pattern in order:
            server = drivers[transport].testbed.mongo
            share = calls[pattern] // s.tls_blocks + (1 if block < calls[pattern] % s.tls_blocks else 0)
            mark = server.mark()
            drivers[transport].run_block(environments[transport, pattern], share)  # ends frozen
            _settle(server, FROZEN_QUIET_S)
            records[transport, pattern] += server.records_since(mark)


def _settle(server, quiet_s):
    """Wait until the members have accepted no new connection for quiet_s (at most SETTLE_CAP_S)."""
    started = quiet_since = time.monotonic()
    count = server.connections_opened
    while time.monotonic() - started < SETTLE_CAP_S:
        time.sleep(0.01)
        now = server.connections_opened
        if now != count:
            count, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return


def _versions(records):
    """TLS version -> connections that negotiated it ("none": no TLS)."""
    return dict(collections.Counter(record.tls_version or "none" for record in records))


def _figures(environment, records, cold_records, bed):
    """One environment's figures: latencies, cold start, and the connections charged to it."""
    n = environment.invocations
    opened, first = len(records), len(cold_records)
    warm = opened - first
    # the first 1,000 invocations; with fewer, the warm ones' rate carried on to 1,000
    per_1000 = opened if n >= 1000 else first + warm * 999 / max(n - 1, 1)
    per_1000 = int(per_1000) if per_1000 == int(per_1000) else per_1000
    kinds = collections.Counter(record.kind or "none" for record in records)
    return {
        **served(environment),
        "cold_start_ms": environment.cold_start_ms,
        "conns_opened": opened,
        "conns_opened_cold": first,
        "conns_opened_warm": warm,
        "conns_opened_per_1000": per_1000,
        "conns_opened_per_invocation": opened / n,
        "monitor_conns_per_invocation": kinds["monitor"] / n,
        "pool_conns_per_invocation": kinds["pool"] / n,
        "conns_by_kind": dict(kinds),
        "tls_versions": _versions(records),
        "conns_with_tls": sum(1 for record in records if record.tls_version),
        "conns_live_end": live_connections(environment.pid, bed.mongo.ports),
        "credential_reads": environment.credential_reads,
    }


def _transport_figures(records):
    """Every connection one replica set accepted during the round, whatever opened it."""
    return {
        "connections": len(records),
        "tls_versions": _versions(records),
        "conns_with_tls": sum(1 for record in records if record.tls_version),
        # a connection that sent a command without TLS; over TLS there must be none
        "served_without_tls": sum(1 for record in records if record.commands and not record.tls_version),
        # accepted, but closed before its first command (e.g. during the TLS handshake)
        "closed_before_a_command": sum(1 for record in records if not record.commands),
    }


def _round_line(mode, index, rounds, figures):
    t, p = figures["transports"]["tls"], figures["transports"]["plain"]
    th, ph = t["patterns"]["handler"], p["patterns"]["handler"]
    tc, pc = t["patterns"]["counter_example"], p["patterns"]["counter_example"]
    versions = ", ".join(f"{version} {count}" for version, count in sorted(t["tls_versions"].items()))
    return (
        f"{mode} TLS round {index + 1}/{rounds}: GET p50 TLS / plain: handler {fmt(th['get_p50_ms'])} / "
        f"{fmt(ph['get_p50_ms'])} ms, counter-example {fmt(tc['get_p50_ms'])} / {fmt(pc['get_p50_ms'])} ms; "
        f"connections opened handler {th['conns_opened']}/{th['invocations']} calls, counter-example "
        f"{tc['conns_opened']}/{tc['invocations']} over TLS; TLS connections: {versions}"
    )
