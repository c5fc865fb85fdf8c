"""Where things are in this project, found on disk so no module needs template variables.

ROOT, SRC, EVENTS    the project folder, src/ (Lambda's task root) and events/
PACKAGE, HANDLER     the function package's name and its Lambda handler (template.yaml's)
deployed_uri()       the MONGODB_URI template.yaml gives the function (deployed_variable(name):
                     any), as a deploy with the parameters' defaults sets it (parameter_default)
deployed_uri_for(deployment, **options)   that URI's options on a local deployment's address
deployed_options(scheme)                   the deployed URI's options that apply to that scheme
deployed_function()  what Lambda knows of the deployed function: memory, region, names, runtime

The auth mode, and what the tests start for it, is tests/support/auth.py's.
"""

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

ROOT = Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "src"
EVENTS = ROOT / "events"
PACKAGE = next(SRC.glob("*/app.py")).parent.name


def _handler() -> str:
    """The function's Handler as template.yaml sets it: <package>.app.handler, or in a SnapStart
    project the module that registers the runtime hooks around it, <package>.snapshot.handler."""
    template = (ROOT / "template.yaml").read_text()
    (handler,) = re.findall(rf"^\s+Handler: ({PACKAGE}\.\w+\.handler)$", template, re.M)
    return handler


HANDLER = _handler()


def parameter_default(name: str) -> str:
    """The default of one of template.yaml's parameters, as CloudFormation passes it (a string)."""
    template = (ROOT / "template.yaml").read_text()
    found = re.findall(rf"^  {name}:\n(?:    .*\n)*?    Default: (.*)$", template, re.M)
    assert len(found) == 1, f"template.yaml should have one parameter {name} with a default"
    return str(json.loads(found[0]))


def deployed_variable(name: str) -> str:
    """A variable template.yaml gives the function, as a deploy with the parameters' defaults sets
    it: a JSON-quoted YAML scalar, a parameter (!Ref Name) or a string with parameters in it
    (!Sub "...${Name}...")."""
    template = (ROOT / "template.yaml").read_text()
    found = re.findall(rf"^\s+{name}: (!Ref |!Sub )?(.*)$", template, re.M)
    assert len(found) == 1, f"template.yaml should set {name} once"
    ((tag, value),) = found
    if tag == "!Ref ":
        return parameter_default(value)
    value = json.loads(value)
    assert isinstance(value, str), f"template.yaml should set {name} as a quoted string"
    if tag == "!Sub ":
        value = re.sub(r"\$\{(\w+)\}", lambda match: parameter_default(match.group(1)), value)
    return value


def deployed_uri() -> str:
    """The MONGODB_URI that template.yaml gives the function."""
    return deployed_variable("MONGODB_URI")


# What a local deployment's own URI adds to reach it; everything else comes from template.yaml.
REACH_OPTIONS = {"directconnection", "replicaset", "tls", "ssl", "tlscafile"}
# What only a mongodb+srv:// host's records use (srvMaxHosts on a sharded cluster): a deployment
# reached by its hosts (mongodb://) leaves them out, as pymongo refuses them there.
SRV_ONLY_OPTIONS = {"srvmaxhosts", "srvservicename"}


def deployed_options(scheme: str = "mongodb+srv") -> list[tuple[str, str]]:
    """The options of the deployed MONGODB_URI that apply to a URI of this scheme."""
    options = parse_qsl(deployed_uri().partition("?")[2])
    if scheme == "mongodb+srv":
        return options
    return [(name, value) for name, value in options if name.lower() not in SRV_ONLY_OPTIONS]


def deployed_uri_for(deployment, **options) -> str:
    """The URI template.yaml gives the function, on the deployment's hosts: the deployment's own
    options for reaching it (directConnection or replicaSet, TLS and its CA), then every option
    template.yaml sets (authentication, maxPoolSize=1, retryable writes, w=majority,
    connectTimeoutMS) and nothing else, then options."""
    base, _, own = deployment.uri.partition("?")
    reach = {name: value for name, value in parse_qsl(own) if name.lower() in REACH_OPTIONS}
    merged = reach | dict(deployed_options(base.partition("://")[0]))
    return f"{base}?{urlencode(merged | {name: str(value) for name, value in options.items()})}"


@dataclass(frozen=True)
class DeployedFunction:
    memory_mb: int
    region: str
    function_name: str
    service: str
    runtime: str  # Lambda's identifier, python3.13; AWS_EXECUTION_ENV is AWS_Lambda_<runtime>


def deployed_function() -> DeployedFunction:
    """What Lambda would tell the function about itself once deployed: its memory size
    (template.yaml), its region and stack (samconfig.toml's defaults; CloudFormation names the
    function <stack>-Function-<suffix>) and its service name (POWERTOOLS_SERVICE_NAME)."""
    function = (ROOT / "template.yaml").read_text().split(f"Handler: {HANDLER}\n", 1)[1]
    memory = re.search(r"^\s+MemorySize: (\d+)$", function, re.M).group(1)
    runtime = re.search(r"^\s+Runtime: (\S+)$", function, re.M).group(1)
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]
    stack = config["global"]["parameters"]["stack_name"]
    return DeployedFunction(
        memory_mb=int(memory),
        region=config["deploy"]["parameters"]["region"],
        function_name=f"{stack}-Function",
        service=deployed_variable("POWERTOOLS_SERVICE_NAME"),
        runtime=runtime,
    )
