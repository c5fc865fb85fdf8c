"""Validate the answers before cookiecutter writes anything.

The answers are rendered once, as data, into ANSWERS. Everything below is plain
Python, so tests render this file with cookiecutter's own environment, import it
and call validate() directly. Each problem is reported as one line,
`ERROR: <variable>: <reason>`, on stderr; exit status 1 makes cookiecutter remove
the half-made project folder.
"""

import json
import keyword
import os
import re
import shlex
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# The connection budget's derivation is the template's connection_budget.py, the same module the
# templates call through cookiecutter's local extension; this hook runs as a script of its own, so
# it imports it from the folder the extension was loaded from.
sys.path.insert(0, json.loads(r"""{{ [connection_budget_module()] | tojson }}""")[0])
import connection_budget  # noqa: E402

MEMORY_MB = (128, 10240)
# The HTTP API gives up on an integration after 30 s and the limit cannot be raised
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html): a longer
# function timeout would only let database work outlive the request that asked for it.
TIMEOUT_SECONDS = (3, 30)
MAX_SLUG_LENGTH = 40
MAX_NAME_LENGTH = 300
MAX_DESCRIPTION_BYTES = 1024  # CloudFormation's limit for a template Description

# Commercial and GovCloud regions (China is not offered by Atlas).
AWS_REGIONS = frozenset(
    """
    us-east-1 us-east-2 us-west-1 us-west-2 us-gov-east-1 us-gov-west-1
    af-south-1 ap-east-1 ap-east-2 ap-south-1 ap-south-2 ap-northeast-1 ap-northeast-2
    ap-northeast-3 ap-southeast-1 ap-southeast-2 ap-southeast-3 ap-southeast-4 ap-southeast-5
    ap-southeast-6 ap-southeast-7 ca-central-1 ca-west-1 eu-central-1 eu-central-2 eu-north-1
    eu-south-1 eu-south-2 eu-west-1 eu-west-2 eu-west-3 il-central-1 me-central-1 me-south-1
    mx-central-1 sa-east-1
    """.split()
)

# What each tier allows comes from cookiecutter.json's _atlas_tiers table (answers["_atlas_tiers"];
# its sources are in docs/prompts.md): whether it offers peering and private endpoints, how long a
# database name may be.
DEDICATED_ONLY_NETWORK_MODES = {"peering": "VPC peering", "private_endpoint": "private endpoints"}
# The host Atlas shows for each way in: a private endpoint's -pl- host, the standard host resolving
# to public addresses that the function's security group cannot reach through the endpoint
# (security-private-endpoint), the -pri peering host resolving to private addresses a NAT gateway
# cannot reach. The rules are connection_budget.py's, which also builds from them the pattern
# template.yaml's AtlasClusterHost parameter allows at deploy time.
PRIVATE_ENDPOINT_LABEL = connection_budget.PRIVATE_ENDPOINT_HOST_LABEL
PEERING_PRIVATE_LABEL = connection_budget.PEERING_PRIVATE_HOST_LABEL

SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# cookiecutter.json's project_slug when project_name slugifies to nothing: without it cookiecutter
# would take the output folder itself as the project and stop before this hook can explain.
NO_SLUG = "0-project-name-has-no-letters-or-digits"
DIGITS = re.compile(r"[0-9]+")
HOST_LABEL = re.compile(connection_budget.DNS_LABEL)
# as template.yaml's DatabaseName parameter allows (connection_budget.database_pattern)
DATABASE_FORBIDDEN = set(connection_budget.DATABASE_FORBIDDEN)
RESERVED_DATABASES = set(connection_budget.RESERVED_DATABASES)
# built from pieces: written out whole, the markers would be template syntax in this very file
JINJA_MARKERS = tuple("{" + second for second in ("{", "%", "#"))
TEXT_FIELDS = ("project_name", "description", "project_slug", "package_name", "atlas_cluster_host", "database_name")


class ValidationError(ValueError):
    """One bad answer: the variable it belongs to and why."""

    def __init__(self, field, reason):
        super().__init__(f"{field}: {reason}")
        self.field = field


def _integer(field, value, low, high, unit, why=""):
    allowed = f"an integer number of {unit} from {low} to {high}{why}"
    if not isinstance(value, str) or not DIGITS.fullmatch(value):
        raise ValidationError(field, f"{value!r} is not {allowed} (digits only, no spaces)")
    if value.startswith("0"):
        raise ValidationError(
            field, f"{value!r} has a leading zero, which YAML reads as an octal number; write {int(value)}"
        )
    if len(value) > 6 or not low <= int(value) <= high:
        raise ValidationError(field, f"{value} is out of range; use {allowed}")


def _text(field, value, max_length):
    if not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, f"is {len(value)} characters long; at most {max_length} are allowed")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValidationError(field, "must be one line without control characters (newline, tab)")


def check_project_name(answers):
    _text("project_name", answers["project_name"], MAX_NAME_LENGTH)


def check_no_template_syntax(answers):
    """A value holding Jinja syntax would be evaluated by the next cookiecutter or cruft render."""
    for field in TEXT_FIELDS:
        marker = next((marker for marker in JINJA_MARKERS if marker in answers[field]), None)
        if marker:
            raise ValidationError(
                field, f"must not contain {marker!r}: cookiecutter and cruft would evaluate it as a template"
            )


def check_description(answers):
    description = answers["description"]
    _text("description", description, MAX_DESCRIPTION_BYTES)
    if len(description.encode("utf-8")) > MAX_DESCRIPTION_BYTES:
        raise ValidationError(
            "description", f"must fit in {MAX_DESCRIPTION_BYTES} bytes of UTF-8 (a CloudFormation limit)"
        )


def check_project_slug(answers):
    slug = answers["project_slug"]
    if slug == NO_SLUG and answers["project_name"].strip():
        raise ValidationError(
            "project_name",
            f"{answers['project_name']!r} has no letters or digits to make a folder name from; "
            "use some, or set project_slug explicitly",
        )
    if not SLUG.fullmatch(slug) or len(slug) > MAX_SLUG_LENGTH:
        raise ValidationError(
            "project_slug",
            f"{slug!r} must be lowercase letters, digits and single hyphens, start with a letter "
            f"and be at most {MAX_SLUG_LENGTH} characters (set project_slug explicitly)",
        )


def check_package_name(answers):
    name = answers["package_name"]
    if not name.isidentifier() or not name.isascii() or keyword.iskeyword(name) or name != name.lower():
        raise ValidationError("package_name", f"{name!r} must be a lowercase Python identifier such as orders_service")


def check_memory_size(answers):
    _integer("memory_size", answers["memory_size"], *MEMORY_MB, "MB")


def check_timeout_seconds(answers):
    why = " (the HTTP API gives up after 30 s, so a longer timeout only lets database work outlive its caller)"
    _integer("timeout_seconds", answers["timeout_seconds"], *TIMEOUT_SECONDS, "seconds", why)


def check_aws_region(answers):
    region = answers["aws_region"]
    if region not in AWS_REGIONS:
        raise ValidationError("aws_region", f"{region!r} is not a known AWS region name (lowercase, such as us-east-1)")


def check_atlas_cluster_host(answers):
    host = answers["atlas_cluster_host"]
    field = "atlas_cluster_host"
    if "://" in host:
        raise ValidationError(field, f"give the host name only, without a scheme such as {host.split('://')[0]}://")
    if "@" in host:
        raise ValidationError(
            field, "give the host name only, without user:password@ (credentials never go in the URI)"
        )
    if any(char in host for char in "/?:"):
        raise ValidationError(field, "give the host name only, without a port, path or query string")
    labels = host.split(".")
    too_long = len(host) > connection_budget.MAX_HOST_LENGTH
    if too_long or len(labels) < 3 or not all(HOST_LABEL.fullmatch(label) for label in labels):
        raise ValidationError(
            field,
            f"{host!r} is not a lowercase DNS host name with at least three labels, such as cluster0.abcde.mongodb.net",
        )
    mode, first = answers["network_mode"], labels[0]
    if mode == "private_endpoint" and not PRIVATE_ENDPOINT_LABEL.search(first):
        raise ValidationError(
            field,
            f"{host!r} is not a private endpoint host; with network_mode=private_endpoint use the -pl- host "
            "Atlas shows for the endpoint (such as cluster0-pl-0.abcde.mongodb.net): the standard host "
            "resolves to public addresses the function cannot reach",
        )
    if mode != "private_endpoint" and PRIVATE_ENDPOINT_LABEL.search(first):
        raise ValidationError(
            field,
            f"{host!r} is a private endpoint host, which only resolves through an endpoint; "
            f"with network_mode={mode} use the cluster's standard host (such as cluster0.abcde.mongodb.net)",
        )
    if mode == "nat_gateway" and PEERING_PRIVATE_LABEL.search(first):
        raise ValidationError(
            field,
            f"{host!r} is a -pri host, which resolves to the nodes' private addresses for VPC peering; "
            "with network_mode=nat_gateway use the cluster's standard host (such as cluster0.abcde.mongodb.net)",
        )
    # the -lb host (connection_budget.py): Atlas's load balancer in front of a sharded cluster's mongos
    # routers, whose DNS TXT record puts the driver in load-balanced mode
    if connection_budget.load_balanced(host) and answers["atlas_cluster_type"] != "sharded":
        raise ValidationError(
            field,
            f"{host!r} is the -lb host of Atlas's optimized connection string, which Atlas generates for "
            "sharded clusters only (a load balancer in front of the mongos routers); set "
            "atlas_cluster_type=sharded if the cluster is sharded, or use its -pl- host without -lb "
            "(such as cluster0-pl-0.abcde.mongodb.net)",
        )


def check_database_name(answers):
    name = answers["database_name"]
    field = "database_name"
    if not name:
        raise ValidationError(field, "must not be empty")
    bad = sorted(DATABASE_FORBIDDEN.intersection(name))
    if bad:
        raise ValidationError(
            field, f'{name!r} contains {"".join(bad)!r}; MongoDB forbids /\\. "$*<>:|? and NUL in database names'
        )
    if len(name.encode("utf-8")) >= 64:
        raise ValidationError(field, "must be shorter than 64 bytes")  # MongoDB's own limit
    tier = answers["atlas_tier"]
    limit = answers["_atlas_tiers"][tier]["max_database_name_bytes"]
    if len(name.encode("utf-8")) > limit:
        raise ValidationError(field, f"{name!r} is longer than the {limit} bytes Atlas allows on {tier}")
    if name.lower() in RESERVED_DATABASES:
        raise ValidationError(field, f"{name!r} is reserved by MongoDB; choose an application database name")


def check_network_for_tier(answers):
    mode, tier = answers["network_mode"], answers["atlas_tier"]
    if not answers["_atlas_tiers"][tier]["private_networking"] and mode in DEDICATED_ONLY_NETWORK_MODES:
        raise ValidationError(
            "network_mode",
            f"Atlas offers no {DEDICATED_ONLY_NETWORK_MODES[mode]} on {tier}; "
            "choose nat_gateway or a dedicated tier (M10 or larger)",
        )


def check_cluster_type_for_tier(answers):
    """Atlas shards from M30 up; M10 and M20 are replica sets only (Atlas docs, manage-clusters)."""
    tier = answers["atlas_tier"]
    if answers["atlas_cluster_type"] == "sharded" and not answers["_atlas_tiers"][tier]["sharding"]:
        raise ValidationError(
            "atlas_cluster_type", f"Atlas offers no sharded clusters on {tier}; choose M30 or larger, or replica_set"
        )


def check_connection_budget(answers):
    """The budget (connection_budget.py: the reserved concurrency and each route's throttling
    limits) must leave the function at least one execution environment and one request per second
    on every route. It depends on the timeout and the memory size too, so a bad one of those is
    reported once, as itself."""
    try:
        check_timeout_seconds(answers)
        check_memory_size(answers)
    except ValidationError:
        return
    tier, pool = answers["atlas_tier"], answers["_max_pool_size"]
    percents = {key: answers[key] for key in ("_atlas_reserved_percent", "_other_clients_percent")}
    for key, value in percents.items():
        if not DIGITS.fullmatch(str(value)) or not 0 <= int(value) < 100:
            raise ValidationError(key, f"{value!r} must be a whole percentage from 0 to 99")
    if not DIGITS.fullmatch(str(pool)) or int(pool) < 1:
        raise ValidationError("_max_pool_size", f"{pool!r} must be a positive integer")
    budget = connection_budget.derive(answers)
    numbers = ("reserved_concurrency", "throttling_burst_limit", "throttling_rate_limit")
    if min(budget[name] for name in numbers) < 1:
        raise ValidationError(
            "atlas_tier",
            f"no connection budget is left for the function on {tier}: "
            f"{answers['_atlas_tiers'][tier]['connections_per_node']} connections per node, less "
            f"{percents['_atlas_reserved_percent']}% kept for Atlas and {percents['_other_clients_percent']}% "
            f"left to other clients, leaves {budget['node_connections']} for "
            f"{budget['reserved_concurrency']} execution environments of "
            f"{budget['connections_per_environment_on_primary']} connections each "
            f"on the primary, a burst of {budget['throttling_burst_limit']} and "
            f"{budget['throttling_rate_limit']} requests per second on each of its {budget['routes']} routes; "
            "choose a larger tier, a smaller _other_clients_percent or a smaller _max_pool_size",
        )


SNAP_START_ANSWERS = ("no", "yes")
PYTHON_RUNTIME = re.compile(r"python([0-9]+)\.([0-9]+)")


def _python_version(runtime):
    """(3, 12) for python3.12; None for a name that is not a Lambda Python runtime's."""
    match = PYTHON_RUNTIME.fullmatch(runtime)
    return (int(match[1]), int(match[2])) if match else None


def check_snap_start(answers):
    """What Lambda SnapStart does not support, from cookiecutter.json's _snap_start (its sources are
    listed there): runtimes before minimum_python_runtime and the Regions without it. The features it
    excludes (excluded_features: provisioned concurrency, EFS, ephemeral storage over 512 MB) are no
    answer of this template, and the stack sets none of them (tests/test_snap_start.py holds it), so
    there is no combination of answers to refuse for them."""
    choice = answers["snap_start"]
    if choice not in SNAP_START_ANSWERS:
        raise ValidationError("snap_start", f"{choice!r} must be one of {', '.join(SNAP_START_ANSWERS)}")
    if choice != "yes":
        return
    table = answers["_snap_start"]
    runtime, minimum = answers["python_runtime"], table["minimum_python_runtime"]
    version = _python_version(runtime)
    if version is None or version < _python_version(minimum):
        raise ValidationError(
            "snap_start",
            f"Lambda SnapStart needs the {minimum} runtime or later, and python_runtime is {runtime}; "
            "choose a later python_runtime, or snap_start=no",
        )
    region = answers["aws_region"]
    if region in table["unsupported_regions"]:
        raise ValidationError(
            "snap_start",
            f"Lambda SnapStart for Python is not offered in {region} ({table['unsupported_regions'][region]}); "
            "choose snap_start=no, or another aws_region",
        )


CHECKS = (
    check_no_template_syntax,
    check_project_name,
    check_project_slug,
    check_package_name,
    check_description,
    check_memory_size,
    check_timeout_seconds,
    check_aws_region,
    check_atlas_cluster_host,
    check_database_name,
    check_network_for_tier,
    check_cluster_type_for_tier,
    check_connection_budget,
    check_snap_start,
)


# A value derived from a bad one repeats its problem: report the source only.
DERIVED_FROM = {"project_slug": "project_name", "package_name": "project_slug", "description": "project_name"}


def validate(answers):
    """Return the ValidationErrors for these answers, in prompt order (empty when all is well)."""
    errors, failed = [], set()
    for check in CHECKS:
        try:
            check(answers)
        except ValidationError as error:
            if DERIVED_FROM.get(error.field) not in failed:
                errors.append(error)
            # the variable blamed, and the one checked (a slug that fails blames project_name)
            failed |= {error.field, check.__name__.removeprefix("check_")}
    return errors


def template_argument(answers):
    """The template as the user gave it to cookiecutter, quoted for a shell."""
    return shlex.quote(str(answers.get("_template") or "<template>"))


def retry_command(answers, errors):
    """A ready-to-run `cookiecutter --no-input` line with every answer given, and a line of carets
    under the ones to fix. A value derived from a bad answer (the slug of a bad name) is left out,
    so it is derived again from the fixed one; private settings appear only when one is bad."""
    bad = {error.field for error in errors}
    words = ["cookiecutter", "--no-input", template_argument(answers)]
    marked = []
    for name, value in answers.items():
        if (name.startswith("_") and name not in bad) or isinstance(value, (dict, list)):
            continue
        if DERIVED_FROM.get(name) in bad:
            continue
        if name in bad:
            marked.append(len(words))
        words.append(f"{name}={shlex.quote(str(value))}")
    line = " ".join(words)
    carets = [" "] * len(line)
    position = 0
    for index, word in enumerate(words):
        if index in marked:
            carets[position : position + len(word)] = "^" * len(word)
        position += len(word) + 1
    return line, "".join(carets).rstrip()


def replay_file(answers):
    """The replay file cookiecutter wrote just before this hook ran, when it can be found (it is in the
    configured `replay_dir`, named after the template's folder) and holds these same answers."""
    try:
        from cookiecutter.config import get_user_config
        from cookiecutter.replay import get_file_name

        folder = os.path.basename(os.path.abspath(answers["_repo_dir"]))
        path = get_file_name(get_user_config()["replay_dir"], folder)
        with open(path, encoding="utf-8") as file:
            saved = json.load(file)["cookiecutter"]
    except Exception:  # a hint only: an unreadable config or file must not hide the errors
        return None
    same = all(saved.get(name) == value for name, value in answers.items() if not name.startswith("_"))
    return path if same else None


def main():
    errors = validate(ANSWERS)
    if not errors:
        return 0
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    line, carets = retry_command(ANSWERS, errors)
    print(
        f"Nothing was generated. To try again with the same answers, fix the {len(errors)} marked with ^ and run:",
        file=sys.stderr,
    )
    print(f"  {line}\n  {carets}", file=sys.stderr)
    saved = replay_file(ANSWERS)
    where = f"in {saved}" if saved else "in its replay file"
    replay = f"--replay-file {shlex.quote(str(saved))}" if saved else "--replay"
    print(
        f"cookiecutter saved these answers, the rejected ones too, {where}: fix them there before"
        f" `cookiecutter {replay} {template_argument(ANSWERS)}`.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
