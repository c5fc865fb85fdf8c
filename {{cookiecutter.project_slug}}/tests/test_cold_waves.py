"""Cold waves: every execution environment the function may run starts cold at once, each its own
process under the real runtime client (tests/support/cold_wave.py, fleet.py), against a replica
set over TLS whose members limit new connections as this tier's do on Atlas (limiter.py: mongod's
token bucket with one second of burst, FIFO, a token returned by a client that leaves the queue).
Each environment initialises, reads its own credentials, connects, authenticates and writes,
with the function's own deadline.

The environments share this machine's cores, where on Lambda each has its own: a local wave is
harsher than Lambda's, never kinder. The limiter gives them the tier's whole rate (nobody else
connects here), where the budget counts only this function's share and no burst; the figures
printed at the end of the run show how much room that leaves.
"""

import collections
import math

import pytest

from tests.support.cold_wave import run_wave
from tests.support.mongo import TIER

pytestmark = pytest.mark.slow

BUDGET = TIER["budget"]
RATE = TIER["new_connections_per_second_per_node"]
TIMEOUT_MS = BUDGET["function_timeout_seconds"] * 1000
# The share of the primary's admissions a healthy wave may spend on attempts nobody waits for.
MOST_WASTED_SHARE = 0.10
CONNECTIONS_CREATED = "MongoConnectionsCreated"


def a_wave(local_auth, tmp_path, environments: int, limits: dict | None = None, **uri_options):
    """A wave against a fresh replica set whose members admit this tier's rate."""
    log_dir = tmp_path / "fleet"
    return run_wave(local_auth, environments, TIMEOUT_MS, log_dir, RATE, limits, **uri_options)


def spent_on_nobody(wave) -> float:
    """The share of the primary's admissions spent on attempts that were given up: queued ones
    that left (each queues again) and admissions of clients already gone."""
    return (wave.abandoned + wave.wasted) / max(1, wave.admissions)


if RATE:

    def test_every_environment_the_function_may_run_starts_cold_at_once_and_answers_in_time(
        app, local_auth, tmp_path, figures
    ):
        wave = a_wave(local_auth, tmp_path, BUDGET["reserved_concurrency"])
        figures.values["cold_wave_at_the_reserved_concurrency"] = wave.figures()
        assert wave.statuses == {201: BUDGET["reserved_concurrency"]}, wave.figures()
        assert wave.slowest_seconds * 1000 < BUDGET["cold_window_ms"], wave.figures()
        assert spent_on_nobody(wave) < MOST_WASTED_SHARE, wave.figures()
        # a monitor and a pool connection each on the primary, none opened twice
        assert wave.admissions <= wave.needed * (1 + MOST_WASTED_SHARE), wave.figures()

    def test_counter_example_monitors_that_give_up_after_3_s_queue_again(
        app, local_auth, tmp_path, figures
    ):
        """The old setting: a monitor's connect timeout of 3 s. Its request waits on under
        pymongo.timeout, but the monitor gives up in the queue, rejoins it at the back and
        spends admissions nobody waits for; the pool cannot connect before its monitor has."""
        wave = a_wave(local_auth, tmp_path, BUDGET["reserved_concurrency"], connectTimeoutMS=3000)
        figures.failures_expected(
            "cold_wave_with_3_s_monitors",
            wave.figures(),
            "counter-example: 3 s monitors give up in the queue and queue again",
        )
        assert set(wave.statuses) <= {201, 503}, wave.figures()  # never a 500
        assert spent_on_nobody(wave) >= MOST_WASTED_SHARE, wave.figures()

    def test_counter_example_a_wave_larger_than_the_limiter_admits_in_time(
        app, local_auth, tmp_path, figures
    ):
        """Reserved concurrency sized by connection counts alone (BUDGET environments_by_node,
        540 on M10) lets more environments start at once than the primary admits before their
        deadline. Running that many processes here would measure this machine's memory, not
        the limiter (the benchmark does it), so the wave is the least that cannot fit: even with
        the whole rate and a full second of burst, some environments must miss their deadline."""
        window = BUDGET["cold_window_ms"] / 1000
        admissible = RATE + math.floor(RATE * window)  # one second of burst, then the rate
        environments = admissible // 2 + max(8, admissible // 20)
        assert environments <= BUDGET["environments_by_node"]  # the old bound would have let it
        wave = a_wave(local_auth, tmp_path, environments)
        figures.failures_expected(
            "cold_wave_beyond_the_bound",
            wave.figures(),
            "counter-example: more environments than the limiter admits in time answer 503",
        )
        assert wave.ok <= admissible // 2, wave.figures()
        assert wave.ok < environments, wave.figures()
        failed = collections.Counter(
            {status: n for status, n in wave.statuses.items() if status != 201}
        )
        assert set(failed) <= {503, None}, wave.figures()  # 503s, or no answer in time; never a 500

    def test_a_shallow_queue_turns_the_wave_into_quick_503s_that_say_why(
        app, local_auth, tmp_path, figures
    ):
        """Atlas does not publish its queue's depth. With mongod's default of none, every attempt
        that finds no token is closed at once: the environments that lose answer 503 well before
        their deadline, their log says the cluster refused new connections, MongoConnectionsCreated
        counts the driver's retries, and nothing waits past the deadline."""
        wave = a_wave(local_auth, tmp_path, BUDGET["reserved_concurrency"], {"max_queue_depth": 0})
        figures.failures_expected(
            "cold_wave_with_no_queue",
            wave.figures(),
            "with no queue at the limiter, the environments that lose answer 503 at once",
        )
        assert set(wave.statuses) <= {201, 503} and wave.statuses[503] > 0, wave.figures()
        assert wave.refused > 0, wave.figures()
        assert wave.slowest_seconds * 1000 < BUDGET["cold_window_ms"], wave.figures()
        assert set(wave.log_errors) == {"overloaded"}, wave.figures()
        assert sum(wave.log_errors.values()) == wave.statuses[503]
        created = wave.metric_total(CONNECTIONS_CREATED)
        assert created > wave.environments, (created, wave.figures())  # retries, counted

else:

    def test_without_a_connection_rate_limit_every_environment_may_start_at_once():
        """This tier admits new connections as fast as they come: the reserved concurrency is the
        connection-count bound, and the monitors keep a short connect timeout."""
        assert BUDGET["new_connections_per_second"] is None
        assert BUDGET["environments_by_connection_rate"] is None
        bounds = [
            BUDGET["environments_by_node"],
            BUDGET["account_cap"],
            BUDGET["environments_by_cluster"],
        ]
        assert BUDGET["reserved_concurrency"] == min(bound for bound in bounds if bound is not None)
        assert BUDGET["monitor_connect_timeout_ms"] <= BUDGET["cold_window_ms"]
