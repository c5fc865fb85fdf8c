"""The local replica set's connection rate limiter (tests/support/limiter.py) behaves as mongod's
does, on real TLS connections: a burst then the rate, FIFO, a queued client that gives up returns
its token and loses its place, a full queue closes at once, an attempt that waits too long is
dropped. The cold-wave tests (test_cold_waves.py) rest on it. Timings have room for a loaded
machine: the lower bounds are the rate, the upper ones only catch a limiter that never admits.
"""

import socket
import ssl
import struct
import threading
import time

import bson
import pytest

from tests.conftest import local_only
from tests.support.replica_set import start_replica_set

ATLAS_M10_RATE = 15  # new connections a second per node (Atlas M10/M20)


def tls_hello(port: int, ca_file: str, timeout: float, give_up_after: float | None = None):
    """Open a TLS connection, send one hello, read the reply: (outcome, seconds). With
    give_up_after, close the connection if the TLS handshake has not finished by then."""
    began = time.monotonic()
    context = ssl.create_default_context(cafile=ca_file)
    body = bson.encode({"hello": 1, "$db": "admin"})
    payload = struct.pack("<I", 0) + b"\x00" + body
    message = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            raw.settimeout(give_up_after or timeout)
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as connection:
                connection.settimeout(timeout)
                connection.sendall(message)
                header = connection.recv(16)
                length = struct.unpack_from("<i", header)[0]
                received = len(header)
                while received < length:
                    chunk = connection.recv(length - received)
                    if not chunk:
                        raise ConnectionError("closed mid-reply")
                    received += len(chunk)
        return "ok", time.monotonic() - began
    except (OSError, ssl.SSLError) as error:
        return type(error).__name__, time.monotonic() - began


def burst(port: int, ca_file: str, count: int) -> list:
    """count TLS hellos at once: [(outcome, seconds)]."""
    results: list = [None] * count

    def one(index: int) -> None:
        results[index] = tls_hello(port, ca_file, timeout=10)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.fixture
def limited(request):
    """The first member of a replica set whose members have the limiter the test asks for
    (indirect parameters: limiter.py's options), and the CA file to reach it."""
    deployment = start_replica_set(new_connections_per_second=ATLAS_M10_RATE, **request.param)
    local_only(deployment)
    yield deployment.members[0], deployment.ca_file
    deployment.close()


@pytest.mark.parametrize("limited", [{}], indirect=True)
def test_a_burst_of_one_seconds_tokens_then_the_rate_in_arrival_order(limited, figures):
    member, ca_file = limited
    results = burst(member.port, ca_file, 30)
    waits = sorted(seconds for _, seconds in results)
    assert [outcome for outcome, _ in results] == ["ok"] * 30
    # 15 at once (one second of tokens, mongod's least burst capacity), then one every 1/15 s
    assert 30 - ATLAS_M10_RATE - 3 <= member.queued <= 30 - ATLAS_M10_RATE
    assert member.queued == sum(1 for record in member.connections if record.queued_seconds)
    assert member.limiter.admitted == 30 and member.abandoned == member.wasted == 0
    assert 0.7 <= member.longest_queue_wait <= 5.0
    assert 0.7 <= waits[-1] <= 10.0  # plus the TLS handshakes
    assert all(record.tls_version for record in member.connections)
    figures.values["rate_limiter"] = {
        "connections": 30,
        "rate_per_s": ATLAS_M10_RATE,
        "last_admitted_after_ms": round(waits[-1] * 1000),
    }


@pytest.mark.parametrize("limited", [{"burst_seconds": 2.0}], indirect=True)
def test_a_larger_burst_capacity_admits_more_at_once(limited):
    member, ca_file = limited
    results = burst(member.port, ca_file, 30)
    assert [outcome for outcome, _ in results] == ["ok"] * 30
    assert member.queued <= 3  # two seconds of tokens: all 30 at once, but for a late arrival


@pytest.mark.parametrize("limited", [{"burst_seconds": 1 / ATLAS_M10_RATE}], indirect=True)
def test_a_client_that_gives_up_in_the_queue_returns_its_token_and_loses_its_place(limited):
    """One token at a time, one every 1/15 s. Seven clients arrive in order; the fifth gives up
    after 0.1 s, long before its turn (about 0.27 s), and tries again at 0.3 s. It spends no
    token: seven admissions serve the six that stayed and the retry, which queued at the back."""
    member, ca_file = limited
    outcomes: dict = {}

    def client(name: str, give_up_after: float | None = None) -> None:
        outcomes[name] = tls_hello(member.port, ca_file, 10, give_up_after)

    threads = [
        threading.Thread(target=client, args=(name, 0.1 if name == "quitter" else None))
        for name in ("a", "b", "c", "d", "quitter", "e", "f")
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.005)
    time.sleep(0.3)
    client("retry")
    for thread in threads:
        thread.join(15)
    assert outcomes.pop("quitter")[0] != "ok"  # gave up during its TLS handshake
    assert {name: outcome for name, (outcome, _) in outcomes.items()} == dict.fromkeys(
        "abcdef", "ok"
    ) | {"retry": "ok"}
    assert member.abandoned == 1
    assert member.limiter.admitted == 7  # no token spent on the client that gave up
    assert member.wasted == 0


@pytest.mark.parametrize("limited", [{"max_queue_depth": 5}], indirect=True)
def test_a_full_queue_closes_the_excess_at_once(limited, figures):
    member, ca_file = limited
    results = burst(member.port, ca_file, 30)
    refused = [seconds for outcome, seconds in results if outcome != "ok"]
    limiter = member.limiter
    # 15 tokens, 5 places in the queue, the rest closed at once in their TLS handshake
    assert limiter.admitted == 30 - len(refused) and limiter.rejected == len(refused)
    assert 30 - ATLAS_M10_RATE - 5 - 3 <= len(refused) <= 30 - ATLAS_M10_RATE - 5
    assert all(seconds < 2.0 for seconds in refused)
    assert all(record.tls_version is None for record in member.connections if record.refused)
    figures.failures_expected(
        "rate_limiter_full_queue",
        shows="attempts beyond the queue are closed at once",
        value={
            "connections": 30,
            "queue_depth": 5,
            "closed_at_once": len(refused),
        },
    )


@pytest.mark.parametrize("limited", [{"max_queue_seconds": 0.5}], indirect=True)
def test_an_attempt_that_waits_too_long_is_dropped(limited, figures):
    member, ca_file = limited
    results = burst(member.port, ca_file, 30)
    failed = [seconds for outcome, seconds in results if outcome != "ok"]
    limiter = member.limiter
    # 15 at once, about 7 more within the half second, the rest closed unanswered
    assert 1 <= limiter.dropped <= 30 - ATLAS_M10_RATE
    assert limiter.admitted + limiter.dropped == 30
    assert len(failed) == limiter.dropped
    assert all(0.45 <= seconds <= 5.0 for seconds in failed)
    assert member.longest_queue_wait <= 1.0
    dropped = [record for record in member.connections if record.refused]
    assert len(dropped) == limiter.dropped
    assert all(record.tls_version is None for record in dropped)  # never got past TLS
    figures.failures_expected(
        "rate_limiter_dropped_after_0_5_s",
        limiter.dropped,
        "attempts queued over 0.5 s are dropped",
    )
