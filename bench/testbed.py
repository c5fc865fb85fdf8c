"""One auth mode's test bed: the servers, the function's settings and the shared data.

Per auth mode one MongoDB wire server (the rendered tests' embedded mongoeco behind their
counting TCP front, or MONGODB_TEST_URI) and what the auth mode needs (the rendered
project's tests/support/auth.py LocalAuth: for iam a local STS that checks the SigV4
signature of every MONGODB-AWS login, for scram a counting Secrets Manager holding the
database user's secret) serve every execution environment. The server's users are the auth
mode's, so every pattern authenticates every connection it opens. Each environment gets the
settings template.yaml deploys, pointed at those servers: the URI template.yaml builds, on
the local server's host and port, and the auth mode's credentials. The events are the
rendered project's own (events/get-item.json, events/post-item.json), and the `items`
collection they read and write is seeded here, and reset to the same size before every round.
"""

import json
import shutil
from pathlib import Path

from pymongo import uri_parser

from bench.project import RenderedProject


def _event(project, name):
    return json.loads((project.path / "events" / name).read_text(encoding="utf-8"))


class Testbed:
    """The servers and data of one rendered project (one auth mode).

    A subclass serves the same function from another server (bench/tls_testbed.py: the local
    replica set): it overrides start_server and direct_client, names its logs folder with
    `label`, and may share this auth mode's LocalAuth (`local_auth`) instead of starting one.
    """

    label = None  # logs/<auth mode>[-<label>]

    def __init__(self, project: RenderedProject, seed_documents: int, work: Path, local_auth=None):
        self.project = project
        self.seed_documents = seed_documents
        self.scram = project.auth_mode == "scram"
        self.owns_auth = local_auth is None
        self.local_auth = local_auth or project.support["auth"].LocalAuth().start()
        self.mongo = self.start_server()
        self.port = uri_parser.parse_uri(self.mongo.uri)["nodelist"][0][1] if self.mongo.embedded else None
        deployed = project.function_environment()
        self.uri = project.support["project"].deployed_uri_for(self.mongo)
        self.database = project.answers["database_name"]
        self.function_env = {  # what every pattern's environment gets on top of the runtime's
            "MONGODB_URI": self.uri,
            "MONGODB_DATABASE": self.database,
            "POWERTOOLS_SERVICE_NAME": deployed.get("POWERTOOLS_SERVICE_NAME", project.answers["project_slug"]),
            # template.yaml gives the stack's name; samconfig.toml's default stack is the slug
            "POWERTOOLS_METRICS_NAMESPACE": project.answers["project_slug"],
            "LOG_LEVEL": deployed.get("LOG_LEVEL", "INFO"),
            "BENCH_APP_PACKAGE": project.package,
        } | self.local_auth.environment(self.mongo)
        self.memory_mb = int(project.answers.get("memory_size", 1024))
        self.direct = self.direct_client()
        self.items = self.direct[self.database]["items"]
        self.get_template = _event(project, "get-item.json")
        self.post_template = _event(project, "post-item.json")
        self.post_body = json.loads(self.post_template["body"])
        self.ids = []
        self.reset_collection()
        suffix = f"-{self.label}" if self.label else ""
        self.logs = work / "logs" / f"{project.auth_mode}{suffix}"  # each runtime process's output
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)

    def start_server(self):
        """The MongoDB the functions talk to: the rendered tests' standalone (or MONGODB_TEST_URI),
        whose users are the auth mode's."""
        return self.project.support["mongo"].start_mongo(self.local_auth.login())

    def direct_client(self):
        """The bench's own client, which seeds the data (and serves the direct pymongo calls)."""
        return self.mongo.admin_client()

    def document(self, **fields):
        """The POST event's body with these fields added."""
        return dict(self.post_body, **fields)

    def get_event(self, n):
        """GET /items/{id} of the n-th seeded document (counting round)."""
        item_id = self.ids[n % len(self.ids)]
        event = json.loads(json.dumps(self.get_template))
        event["rawPath"] = event["requestContext"]["http"]["path"] = f"/items/{item_id}"
        event["pathParameters"] = {"id": item_id}
        return event

    def post_event(self, **fields):
        """POST /items of document(**fields)."""
        event = json.loads(json.dumps(self.post_template))
        event["body"] = json.dumps(self.document(**fields))
        return event

    def reset_collection(self):
        """A fresh `items` with the seed documents. The embedded server's inserts slow down as
        a collection grows, so every round (and the load run) starts from the same size."""
        self.items.drop()
        seeded = self.items.insert_many([self.document(seq=i) for i in range(self.seed_documents)])
        self.ids = [str(item_id) for item_id in seeded.inserted_ids]

    def close(self):
        self.direct.close()
        self.mongo.close()
        if self.owns_auth:
            self.local_auth.stop()
