"""Where things are in this project, found on disk so no module needs template variables.

ROOT, SRC, EVENTS    the project folder, src/ (Lambda's task root) and events/
PACKAGE, HANDLER     the function package's name and its Lambda handler string
deployed_uri()       the MONGODB_URI template.yaml gives the function (deployed_variable(name): any)
deployed_uri_for(deployment, **options)   that URI's options on a local deployment's address

The auth mode, and what the tests start for it, is tests/support/auth.py's.
"""

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

ROOT = Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "src"
EVENTS = ROOT / "events"
PACKAGE = next(SRC.glob("*/app.py")).parent.name
HANDLER = f"{PACKAGE}.app.handler"


def deployed_variable(name: str) -> str:
    """A variable template.yaml gives the function, where it is a JSON-quoted YAML scalar."""
    found = re.findall(rf'^\s+{name}: (".*")$', (ROOT / "template.yaml").read_text(), re.M)
    assert len(found) == 1, f"template.yaml should set {name} once, as a quoted string"
    return json.loads(found[0])


def deployed_uri() -> str:
    """The MONGODB_URI that template.yaml gives the function."""
    return deployed_variable("MONGODB_URI")


# Connection options that stay the deployment's own, never template.yaml's: locally there is no
# MONGODB-AWS to sign against, and the local servers' users are SCRAM users.
AUTH_OPTIONS = {"authsource", "authmechanism", "authmechanismproperties"}


def deployed_uri_for(deployment, **options) -> str:
    """The deployment's address, TLS and auth settings with the other options template.yaml gives
    the function (maxPoolSize=1, retryable writes, w=majority, connectTimeoutMS), then options."""
    base, _, own = deployment.uri.partition("?")
    deployed = parse_qsl(deployed_uri().partition("?")[2])
    merged = dict(parse_qsl(own)) | {k: v for k, v in deployed if k.lower() not in AUTH_OPTIONS}
    return f"{base}?{urlencode(merged | {name: str(value) for name, value in options.items()})}"
