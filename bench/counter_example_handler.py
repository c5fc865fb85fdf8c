"""COUNTER-EXAMPLE: what MongoDB's "Manage Connections with AWS Lambda" guidance warns against.

It serves exactly the rendered project's routes (GET /items/{id}, POST /items, ...) through
the rendered handler itself, with one change: every invocation gets a NEW MongoClient and
closes it before returning, instead of reusing one client for the life of the execution
environment. So each call pays a TCP connection, the driver's handshake and a full
authentication (scram: the SCRAM conversation; iam: a MONGODB-AWS login, signed by the
driver and checked by the server with STS); the server sees at least one new connection per
invocation, and with many concurrent environments the connection count follows the
request rate instead of the number of environments.

Everything else is kept equal on purpose: whatever the rendered auth module caches stays
cached (scram: the secret; only the client is discarded), routing, validation and
logging are the rendered ones. It exists only so the benchmark can measure what the
guidance says; do not copy it.

The rendered package's name comes from BENCH_APP_PACKAGE (orders_service by default).
"""

import importlib
import os

_package = os.environ.get("BENCH_APP_PACKAGE", "orders_service")
_app = importlib.import_module(f"{_package}.app")
_database = importlib.import_module(f"{_package}.database")


def handler(event, context):
    _database._client = None  # forget any client: the rendered code builds a new one on use
    try:
        return _app.handler(event, context)
    finally:
        client, _database._client = _database._client, None
        if client is not None:
            client.close()  # ... and close it at the end of every invocation
