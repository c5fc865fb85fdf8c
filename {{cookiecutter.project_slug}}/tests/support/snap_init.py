"""The SnapStart handler (snapshot.py) with a MongoClient created during initialisation, as a
provisioned environment creates it (database.connect_early): the case the hooks must make safe,
run by awslambdaric as tests.support.snap_init.handler (the project root on PYTHONPATH).

MOVE_OBJECT_ID_STATE=<name>  moves that attribute of bson's ObjectId elsewhere once initialised,
                             as a bson that keeps its state under other names would: the
                             after-restore hook must refuse to start the environment.
"""

import importlib
import os

from bson.objectid import ObjectId

from tests.support.project import PACKAGE

snapshot = importlib.import_module(f"{PACKAGE}.snapshot")
app = importlib.import_module(f"{PACKAGE}.app")
importlib.import_module(f"{PACKAGE}.database").connect_early(app.settings)
handler = snapshot.handler

moved = os.environ.get("MOVE_OBJECT_ID_STATE")
if moved:
    setattr(ObjectId, f"{moved}_moved", getattr(ObjectId, moved))
    delattr(ObjectId, moved)
