"""One auth mode's test bed: the servers, the function's settings and the shared data.

Per auth mode one MongoDB wire server (the rendered tests' embedded mongoeco behind their
counting TCP front, or MONGODB_TEST_URI) and, for scram, one counting Secrets Manager
holding the database user's secret serve every execution environment. Each environment
gets the settings template.yaml deploys, pointed at those servers: the server's URI plus
the options the deployed URI sets (pool size, timeouts). The events are the rendered
project's own (events/get-item.json, events/post-item.json), and the `items` collection
they read and write is seeded here, and reset to the same size before every round.
"""

import json
import shutil
from pathlib import Path

from pymongo import MongoClient, uri_parser

from bench.project import RenderedProject


def _merge_uri_options(server_uri, deployed_uri):
    """The local server's URI plus the options template.yaml's URI sets that it lacks."""
    have = uri_parser.split_options(server_uri.partition("?")[2], validate=False) if "?" in server_uri else {}
    have_lower = {name.lower() for name in have}
    extra = []
    for pair in deployed_uri.partition("?")[2].split("&"):
        name, _, value = pair.partition("=")
        if name and name.lower() not in have_lower and name.lower() not in ("authsource", "authmechanism"):
            extra.append(f"{name}={value}")
    if not extra:
        return server_uri
    separator = "&" if "?" in server_uri else "/?"
    return server_uri + separator + "&".join(extra)


def _event(project, name):
    return json.loads((project.path / "events" / name).read_text(encoding="utf-8"))


class Testbed:
    """The servers and data of one rendered project (one auth mode).

    A subclass serves the same function from another server (bench/tls_testbed.py: the local
    replica set): it overrides start_server and direct_client, names its logs folder with
    `label`, and may share this auth mode's Secrets Manager (`secrets`) instead of starting one.
    """

    label = None  # logs/<auth mode>[-<label>]; names the database user's secret too

    def __init__(self, project: RenderedProject, seed_documents: int, work: Path, secrets=None):
        self.project = project
        self.seed_documents = seed_documents
        self.scram = project.auth_mode == "scram"
        self.mongo = self.start_server()
        self.port = uri_parser.parse_uri(self.mongo.uri)["nodelist"][0][1] if self.mongo.embedded else None
        deployed = project.function_environment()
        self.uri = _merge_uri_options(self.mongo.uri, deployed.get("MONGODB_URI", ""))
        self.database = project.answers["database_name"]
        self.function_env = {  # what every pattern's environment gets on top of the runtime's
            "MONGODB_URI": self.uri,
            "MONGODB_DATABASE": self.database,
            "POWERTOOLS_SERVICE_NAME": deployed.get("POWERTOOLS_SERVICE_NAME", project.answers["project_slug"]),
            # template.yaml gives the stack's name; samconfig.toml's default stack is the slug
            "POWERTOOLS_METRICS_NAMESPACE": project.answers["project_slug"],
            "LOG_LEVEL": deployed.get("LOG_LEVEL", "INFO"),
            "BENCH_APP_PACKAGE": project.package,
        }
        self.owns_secrets = secrets is None
        self.secrets = self._start_secrets(secrets) if self.scram else None
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
        """The MongoDB the functions talk to: the rendered tests' standalone (or MONGODB_TEST_URI)."""
        return self.project.support["mongo"].start_mongo(scram=self.scram)

    def direct_client(self):
        """The bench's own client, which seeds the data (and serves the direct pymongo calls)."""
        return MongoClient(self.uri, username=self.mongo.username, password=self.mongo.password)

    def _start_secrets(self, shared=None):
        secrets = shared
        if secrets is None:
            secrets = self.project.support["secretsmanager"].LocalSecretsManager()
            secrets.start()
        name = "bench-database-user" + (f"-{self.label}" if self.label else "")
        arn = secrets.create_secret(name, {"username": self.mongo.username, "password": self.mongo.password})
        self.function_env |= {"MONGODB_SECRET_ARN": arn, "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets.endpoint_url}
        return secrets

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
        if self.secrets is not None and self.owns_secrets:
            self.secrets.stop()
        self.mongo.close()
