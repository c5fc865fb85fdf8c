"""How much a run measures: rounds, invocation counts, sizes, and which stages run.

A full run (`python -m bench`) takes the defaults; `--quick` is a smoke run with smaller
counts, the same three rounds, one-round views (TLS with a fifth of the invocations) and no sam
build.
Every field is written to bench.json's meta.settings, so a figure can always be read against
the counts behind it.
"""

from dataclasses import dataclass


@dataclass
class Settings:
    quick: bool = False
    rounds: int = 3
    blocks: int = 10
    handler_invocations: int = 1000  # handler and floor: one environment, first 1000 calls
    counter_invocations: int = 200  # the counter-example is slow; its rates are per 1000
    cold_starts: int = 3  # per pattern per round (the last one is the environment measured warm)
    direct_invocations: int = 500  # the same read and write with pymongo in this process
    seed_documents: int = 200
    load_environments: int = 4
    load_writes: int = 250  # per environment
    memory_sizes: tuple = (128, 256, 512, 1024, 1769)
    memory_invocations: int = 150
    memory_rounds: int = 3
    tls_rounds: int = 3  # the TLS view: the local replica set with TLS and without
    tls_blocks: int = 5
    tls_handler_invocations: int = 1000  # handler and floor, per environment (TLS and plain)
    tls_counter_invocations: int = 100  # the counter-example opens four connections per call
    cold_path_runs: int = 5  # the cold-wave view: one environment, nothing queued, this many times
    observability_rounds: int = 3  # the observability view: each part of it switched off in turn
    observability_invocations: int = 1000  # warm GETs per variant per round
    instructions: bool = True  # the observability variants' instructions per GET, under callgrind
    instruction_invocations: int = 200  # warm GETs counted per variant
    sam: bool = True
    load: bool = True
    cpu_quota: bool = True
    tls: bool = True
    cold_waves: bool = True
    observability: bool = True
    snapstart: bool = True  # the SnapStart view (bench/snapstart_view.py)

    @classmethod
    def quick_mode(cls):
        return cls(
            quick=True,
            cold_starts=1,
            # Three, as in a full run: the median of two rounds is their mean, which one round the
            # machine slowed decides; the median of three is the middle round.
            rounds=3,
            blocks=5,
            counter_invocations=50,
            seed_documents=50,
            load_environments=2,
            load_writes=60,
            memory_sizes=(256, 1769),
            memory_invocations=40,
            memory_rounds=1,
            tls_rounds=1,
            tls_blocks=2,
            tls_handler_invocations=200,
            tls_counter_invocations=20,
            cold_path_runs=3,
            observability_rounds=1,
            observability_invocations=300,
            instructions=False,
            sam=False,
        )
