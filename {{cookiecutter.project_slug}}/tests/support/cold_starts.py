"""A burst of cold execution environments, each with its own MongoClient built as the function's.

    python -m tests.support.cold_starts --environments 84 --timeout-ms 15000

Run in a process of its own (the test starts it), with the function's environment (MONGODB_URI,
MONGODB_DATABASE, what the auth mode needs, AWS_REGION; the cwd the project): one thread
per environment builds a client with the function's own code (database._build: the URI, the
Lambda-sized options, this auth mode's credentials) and serves its first request the way the
function does, a write under pymongo.timeout(remaining time - DEADLINE_MARGIN_MS), all at
once. AWS_LAMBDA_RUNTIME_API is set, so pymongo behaves as on Lambda (poll monitoring, no
connection at construction). Each environment's outcome is printed as one JSON line: the status
the routes would answer (201, or 503 for a driver error) and how long it took.

Threads in one process stand in for many Lambda processes: what is measured is the connections
they open and when, which is the same; a process each would need some 50 MB apiece.
"""

import argparse
import json
import os
import sys
import threading
import time

import pymongo
from pymongo.errors import PyMongoError


def cold_start(database, config, settings, timeout_ms: int, number: int) -> dict:
    began = time.monotonic()
    client = database._build(settings)
    # the invocation's clock started at `began`, as Lambda's does: the request gets what is left
    left = (timeout_ms - config.DEADLINE_MARGIN_MS) / 1000 - (time.monotonic() - began)
    try:
        if left <= 0:  # the function's middleware answers 503 without touching the database
            raise database.Unavailable("no time left before the invocation deadline")
        with pymongo.timeout(left):
            client[settings.database]["items"].insert_one({"cold_start": number})
        status, error = 201, None
    # a PyMongoError is what the function's database.run turns into Unavailable, its 503
    except (database.Unavailable, PyMongoError) as failure:
        status, error = 503, type(failure).__name__
    except Exception as failure:  # anything else would be the function's 500
        status, error = 500, type(failure).__name__
    seconds = time.monotonic() - began
    client.close()
    return {"environment": number, "status": status, "error": error, "seconds": seconds}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, required=True)
    parser.add_argument("--timeout-ms", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")  # pymongo: this is Lambda
    from tests.support.project import PACKAGE

    config = __import__(f"{PACKAGE}.config", fromlist=["load"])
    database = __import__(f"{PACKAGE}.database", fromlist=["_build"])
    auth = __import__(f"{PACKAGE}.auth", fromlist=["credentials"])
    settings = config.load()
    # The credentials are read once, before the burst: in Lambda each environment reads its own
    # (tens of milliseconds in-region), where here every thread would queue on one local moto
    # server and the figures would measure moto, not the connections.
    auth.credentials()
    outcomes: list[dict] = []
    lock, start = threading.Lock(), threading.Barrier(args.environments)

    def environment(number: int) -> None:
        start.wait()
        outcome = cold_start(database, config, settings, args.timeout_ms, number)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=environment, args=(n,)) for n in range(args.environments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for outcome in sorted(outcomes, key=lambda outcome: outcome["environment"]):
        print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
