"""The Lambda entry point when SnapStart is on (Handler: <package>.snapshot.handler): app.py's
handler, and the runtime hooks that make each environment restored from the snapshot its own.
Importing this module registers them with snapshot_restore_py, which the runtime client
(awslambdaric) reads: it runs the before-snapshot hooks once initialisation is done, and the
after-restore hooks in every environment restored from the snapshot, before its first request
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html).

A snapshot is the initialised environment's memory, and every environment restored from it starts
with the same memory and the same process id, so:

before the snapshot  nothing of the database or of AWS is kept: the MongoClient is closed (its
                     connections, monitor threads and logical sessions: two environments with one
                     session id would have one's write taken by the server as a retry of the
                     other's, acknowledged and never stored), and the auth mode forgets what it
                     resolved (the secret, the SDK client with its credentials). The connections
                     initialisation opened are not counted as any restored environment's.
after every restore  what was drawn at start-up is drawn again: bson's ObjectId process value and
                     counter (bson renews them only when the process id changes, which a restore
                     does not: environments inserting in the same second would make the same
                     _ids) and the seed of Python's `random` (pymongo's server choice, botocore's
                     retry jitter). Powertools' ColdStart metric is armed again, so it counts one
                     cold start per restored environment. Nothing else needs it: session ids
                     (uuid4), SCRAM and MONGODB-AWS nonces, X-Ray ids and `secrets` are read from
                     the operating system when they are used.

A hook that fails stops the environment: the runtime client reports it (/runtime/restore/error)
and Lambda does not send it requests. That is what check_object_id() does when bson no longer
keeps its state where this module renews it: an environment that would repeat another's _ids must
not start.
"""

import os
import random
import secrets

from aws_lambda_powertools.metrics.provider import cold_start
from bson.objectid import ObjectId
from snapshot_restore_py import register_after_restore, register_before_snapshot

from . import auth, database
from .app import handler
from .logs import logger
from .observability import connections

__all__ = ["handler"]

# Where bson 4.20 (pymongo's) keeps the ObjectId state it draws at import, on the class
# (bson/objectid.py): the process id it was drawn for, the counter, the counter's lock and the
# 5-byte process value (a private name, hence mangled).
OBJECT_ID_STATE = ("_pid", "_inc", "_inc_lock", "_ObjectId__random")
OBJECT_ID_RANDOM_BYTES = 5
OBJECT_ID_COUNTER_VALUES = 0x1000000  # a 3-byte counter


@register_before_snapshot
def forget_connections() -> None:
    """Leave nothing of the database or AWS in the snapshot."""
    database.reset()
    auth.forget()
    connections.take()  # initialisation's connections were not any restored environment's
    logger.info("Snapshot: the database client and the credentials are dropped")


@register_after_restore
def renew() -> None:
    """Draw again what start-up drew, so this environment differs from every other restored from
    the same snapshot."""
    renew_object_ids()
    random.seed()  # from os.urandom
    cold_start.reset_cold_start_flag()
    logger.info("Restored: ObjectId state and random renewed", extra={"pid": os.getpid()})


def renew_object_ids() -> None:
    """A new ObjectId process value and counter for this environment, then a check that bson
    uses them (RuntimeError if it does not)."""
    check_object_id()
    value = os.urandom(OBJECT_ID_RANDOM_BYTES)
    with ObjectId._inc_lock:
        ObjectId._pid = os.getpid()  # bson's own renewal is keyed on this; the value is ours
        ObjectId._ObjectId__random = value
        ObjectId._inc = secrets.randbelow(OBJECT_ID_COUNTER_VALUES)
    made = ObjectId().binary
    if made[4 : 4 + OBJECT_ID_RANDOM_BYTES] != value:
        raise RuntimeError(
            "bson's ObjectId did not take the renewed process value: bson keeps it elsewhere now, "
            "so restored environments would make the same _ids; update snapshot.py for this bson"
        )


def check_object_id() -> None:
    """RuntimeError naming what is missing when bson's ObjectId does not keep its state under the
    names this module renews."""
    missing = [name for name in OBJECT_ID_STATE if not hasattr(ObjectId, name)]
    if missing:
        raise RuntimeError(
            f"bson's ObjectId has no {', '.join(missing)}: this bson keeps its process value and "
            "counter elsewhere, so they cannot be renewed after a restore and restored "
            "environments would make the same _ids; update snapshot.py for this bson"
        )
