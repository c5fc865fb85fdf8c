"""One rendered project, several environments (README "Environments"): what differs between clusters
is a parameter of template.yaml, samconfig.toml holds dev and prod with their stacks and
parameter_overrides, `make deploy ENV=dev` deploys one, tools/tier_overrides.py prints another tier's
limits from the same derivation as the defaults, and the post-generation message says when the host
is still the example.

Each environment is checked as CloudFormation would take it: its values against the parameters'
constraints, and the template with those values as its defaults through cfn-lint (which checks
defaults against AllowedPattern, MaxValue and the rest; its --parameters option checks none of them)
and `sam validate --lint`; the function's MONGODB_URI is resolved with them.
"""

import copy
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import NETWORK_MODES, ROOT, TEMPLATE_DEFAULTS, combo_id, default_answers, deployed_variables, render_hook
from test_infrastructure import LINT_RULES
from tools import cfn_lint, sam

import connection_budget

# the combinations whose per-environment parameters differ the most: each network mode and auth mode,
# both provisionings and VPCs, and a sharded cluster on the -lb host
COMBOS = [
    {"auth_mode": "scram", "network_mode": "private_endpoint", "vpc": "new", "atlas_provisioning": "manual"},
    {"auth_mode": "iam", "network_mode": "peering", "vpc": "existing", "atlas_provisioning": "cloudformation"},
    {"auth_mode": "scram", "network_mode": "nat_gateway", "vpc": "new", "atlas_provisioning": "cloudformation"},
    {"auth_mode": "iam", "network_mode": "nat_gateway", "vpc": "existing", "atlas_provisioning": "manual"},
    {
        "auth_mode": "iam",
        "network_mode": "private_endpoint",
        "vpc": "new",
        "atlas_provisioning": "manual",
        "atlas_cluster_type": "sharded",
        "atlas_tier": "M30",
        "atlas_cluster_host": "cluster0-pl-0-lb.abcde.mongodb.net",
    },
]
# dev's own cluster, of another tier than the answers' M10 (M40 for the M30 project)
DEV_HOSTS = {
    "private_endpoint": "dev0-pl-0.fghij.mongodb.net",
    "peering": "dev0.fghij.mongodb.net",
    "nat_gateway": "dev0.fghij.mongodb.net",
}
DEV_LB_HOST = "dev0-pl-0-lb.fghij.mongodb.net"
# what the parameters without a default take once the Atlas side exists (README.md's steps give them)
REQUIRED_VALUES = {
    "AtlasSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/atlas-AbCdEf",
    "AtlasEndpointServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
    "AtlasProjectId": "5f0c8e1a2b3c4d5e6f708192",
    "AtlasClusterName": "Cluster0",
    "VpcId": "vpc-0123456789abcdef0",
    "PrivateSubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "VpcCidr": "10.1.0.0/16",
    "PrivateRouteTableIds": "rtb-0123456789abcdef0",
}


@pytest.fixture(scope="module")
def baked(bake):
    return {combo_id(combo): bake.ok(**combo) for combo in COMBOS}


def run(command, cwd, **kwargs):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, **kwargs)


def samconfig(project):
    return tomllib.loads((project / "samconfig.toml").read_text(encoding="utf-8"))


def overrides(text):
    """samconfig's parameter_overrides, Name=value pairs separated by spaces, as a dict."""
    return dict(pair.split("=", 1) for pair in shlex.split(text))


def tier_overrides(project, tier):
    completed = run([sys.executable, "tools/tier_overrides.py", tier], project)
    assert completed.returncode == 0, completed.stderr
    return overrides(completed.stdout)


def environments(result):
    """Each environment's parameter values: prod's samconfig overrides as rendered (the answers);
    dev's on a cluster of its own, of another tier, its limits from tools/tier_overrides.py. Both
    with what the parameters without a default take."""
    project, context = result.project_path, result.context
    config = samconfig(project)
    dev_tier = "M40" if context["atlas_tier"] == "M30" else "M30"
    dev_host = DEV_LB_HOST if connection_budget.load_balanced(context["atlas_cluster_host"]) else None
    dev = overrides(config["dev"]["deploy"]["parameters"]["parameter_overrides"]) | {
        "AtlasClusterHost": dev_host or DEV_HOSTS[context["network_mode"]],
        "DatabaseName": "orders_dev",
        **tier_overrides(project, dev_tier),
    }
    prod = overrides(config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    required = {
        name: value
        for name, value in REQUIRED_VALUES.items()
        if name in result.template["Parameters"] and "Default" not in result.template["Parameters"][name]
    }
    return {"dev": required | dev, "prod": required | prod}, dev_tier


def refusals(parameters, values):
    """What CloudFormation would refuse in these values for these parameters (empty when none)."""
    missing = [name for name, spec in parameters.items() if "Default" not in spec and name not in values]
    problems = [f"{name} has no value" for name in missing]
    for name, value in values.items():
        spec = parameters.get(name)
        if spec is None:
            problems.append(f"{name} is no parameter of the template")
            continue
        if spec["Type"] == "Number":
            number = float(value)
            if number < spec.get("MinValue", number) or number > spec.get("MaxValue", number):
                problems.append(f"{name}={value} is outside {spec.get('MinValue')}..{spec.get('MaxValue')}")
        elif spec["Type"] == "String":
            if not spec.get("MinLength", 0) <= len(value) <= spec.get("MaxLength", len(value)):
                problems.append(f"{name}={value!r} has the wrong length")
            if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
                problems.append(f"{name}={value!r} does not match {spec['AllowedPattern']}")
    return problems


def with_defaults(template, values):
    """A copy of the template whose parameters default to these values (numbers as numbers)."""
    copied = copy.deepcopy(template)
    for name, value in values.items():
        spec = copied["Parameters"][name]
        spec["Default"] = int(value) if spec["Type"] == "Number" else value
    return copied


@pytest.fixture(scope="module")
def environment_templates(baked, tmp_path_factory):
    """combination -> environment -> (values, path of the template with them as defaults, as JSON)."""
    folder = tmp_path_factory.mktemp("environments")
    found = {}
    for combo in COMBOS:
        result = baked[combo_id(combo)]
        values, _ = environments(result)
        for name, env_values in values.items():
            path = folder / f"{combo_id(combo)}-{name}.json"
            path.write_text(json.dumps(with_defaults(result.template, env_values)), encoding="utf-8")
            found.setdefault(combo_id(combo), {})[name] = (env_values, path)
    return found


# ---- samconfig.toml and make deploy ENV=... -----------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_samconfig_holds_the_default_dev_and_prod(combo, baked):
    result = baked[combo_id(combo)]
    slug, context = result.context["project_slug"], result.context
    config = samconfig(result.project_path)
    assert config["default"]["global"]["parameters"]["stack_name"] == slug
    assert "parameter_overrides" not in config["default"]["deploy"]["parameters"]  # the defaults: the answers
    for name in ("dev", "prod"):
        assert config[name]["global"]["parameters"]["stack_name"] == f"{slug}-{name}"
        deploy = config[name]["deploy"]["parameters"]
        # SAM reads only the chosen environment's tables: each holds what the default's deploy has
        assert {key: deploy[key] for key in config["default"]["deploy"]["parameters"] if key != "s3_prefix"} == {
            key: value for key, value in config["default"]["deploy"]["parameters"].items() if key != "s3_prefix"
        }
        assert deploy["s3_prefix"] == f"{slug}-{name}"
        assert overrides(deploy["parameter_overrides"]) == {
            "AtlasClusterHost": context["atlas_cluster_host"],
            "DatabaseName": context["database_name"],
        }


def test_make_deploy_takes_an_environment(baked):
    project = baked[combo_id(COMBOS[0])].project_path
    for env, expected in (("dev", "sam deploy --config-env dev"), ("prod", "sam deploy --config-env prod")):
        completed = run(["make", "-n", "deploy", f"ENV={env}"], project)
        assert completed.returncode == 0, completed.stderr
        assert expected in completed.stdout.splitlines()
        assert "--guided" not in completed.stdout
    completed = run(["make", "-n", "deploy"], project)
    assert "sam deploy --guided" in completed.stdout.splitlines() and "--config-env" not in completed.stdout


# ---- the parameters, each environment's values, the URI that follows them ------------------------


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_each_environment_is_a_deployable_set_of_parameters(combo, baked):
    result = baked[combo_id(combo)]
    values, _ = environments(result)
    for name, env_values in values.items():
        assert refusals(result.template["Parameters"], env_values) == [], name


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_the_functions_settings_follow_each_environments_parameters(combo, baked):
    result = baked[combo_id(combo)]
    context = result.context
    values, dev_tier = environments(result)
    dev_budget = connection_budget.derive({**context, "atlas_tier": dev_tier})
    auth = "authSource=%24external&authMechanism=MONGODB-AWS" if combo["auth_mode"] == "iam" else "authSource=admin"
    sharded = "&srvMaxHosts=3" if context["atlas_cluster_type"] == "sharded" and not dev_budget["load_balanced"] else ""
    for name, budget in (("dev", dev_budget), ("prod", connection_budget.derive(context))):
        variables = deployed_variables(result.template, **values[name])
        host = values[name]["AtlasClusterHost"]
        assert variables["MONGODB_URI"] == (
            f"mongodb+srv://{host}/?{auth}&retryWrites=true&w=majority&maxPoolSize=1"
            f"&connectTimeoutMS={budget['monitor_connect_timeout_ms']}{sharded}"
        )
        assert variables["MONGODB_DATABASE"] == values[name]["DatabaseName"]
    assert values["prod"]["AtlasClusterHost"] == context["atlas_cluster_host"]
    assert values["dev"]["AtlasClusterHost"] != context["atlas_cluster_host"]
    dev_depth = TEMPLATE_DEFAULTS["_atlas_tiers"][dev_tier]["max_document_depth"]
    assert deployed_variables(result.template, **values["dev"])["MONGODB_MAX_DOCUMENT_DEPTH"] == str(dev_depth)


PROVISIONED = [combo for combo in COMBOS if combo["atlas_provisioning"] == "cloudformation"]


@pytest.mark.parametrize("combo", PROVISIONED, ids=combo_id)
def test_the_stacks_database_user_takes_the_database_parameter(combo, baked):
    template = baked[combo_id(combo)].template
    (user,) = [res for res in template["Resources"].values() if res["Type"] == "MongoDB::Atlas::DatabaseUser"]
    assert [role["DatabaseName"] for role in user["Properties"]["Roles"]] == [{"Ref": "DatabaseName"}]


def test_each_environment_passes_cfn_lint(environment_templates, baked):
    files = [str(path) for envs in environment_templates.values() for _, path in envs.values()]
    schemas = ",".join(str(baked[combo_id(combo)].project_path / "registry-schemas") for combo in PROVISIONED)
    completed = run([cfn_lint(), "--format", "json", *LINT_RULES, "--registry-schemas", schemas, "--", *files], ROOT)
    findings = json.loads(completed.stdout or "[]")
    assert [(Path(f["Filename"]).name, f["Rule"]["Id"], f["Message"]) for f in findings] == []
    assert completed.returncode == 0, completed.stderr


def test_cfn_lint_refuses_an_environment_the_parameters_refuse(baked, tmp_path):
    """The counter-example: a standard host on a private endpoint project, a reserved database name,
    more concurrency than any tier's budget: each a finding, so the check above can fail."""
    result = baked[combo_id(COMBOS[0])]
    values, _ = environments(result)
    bad = values["prod"] | {
        "AtlasClusterHost": "cluster0.abcde.mongodb.net",
        "DatabaseName": "admin",
        "ReservedConcurrency": "5000",
    }
    problems = refusals(result.template["Parameters"], bad)
    refused = [problem.split("=")[0] for problem in problems]
    assert refused == ["AtlasClusterHost", "DatabaseName", "ReservedConcurrency"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(with_defaults(result.template, bad)), encoding="utf-8")
    findings = json.loads(run([cfn_lint(), "--format", "json", "--", str(path)], ROOT).stdout or "[]")
    assert sorted(f["Rule"]["Id"] for f in findings) == ["E2015", "E2015", "E2015"]


@pytest.mark.slow
@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_each_environment_passes_sam_validate_lint(environment, environment_templates, baked):
    combo = COMBOS[0]
    _, path = environment_templates[combo_id(combo)][environment]
    region = baked[combo_id(combo)].context["aws_region"]
    completed = run(
        [sam(), "validate", "--lint", "--template-file", str(path), "--region", region],
        path.parent,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


# ---- the tier's limits: tools/tier_overrides.py ----------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_tier_overrides_print_the_defaults_derivation_for_every_tier(combo, baked):
    result = baked[combo_id(combo)]
    project, context = result.project_path, result.context
    parameters = result.template["Parameters"]
    own = tier_overrides(project, context["atlas_tier"])
    assert own == {name: str(parameters[name]["Default"]) for name in own}, "the defaults are the same derivation"
    assert set(own) == set(connection_budget.TIER_PARAMETERS) | {"MaxDocumentDepth"}
    for tier, limits in TEMPLATE_DEFAULTS["_atlas_tiers"].items():
        completed = run([sys.executable, "tools/tier_overrides.py", tier], project)
        offered = (limits["private_networking"] or context["network_mode"] == "nat_gateway") and (
            limits["sharding"] or context["atlas_cluster_type"] != "sharded"
        )
        if not offered:
            assert (completed.returncode, completed.stdout) == (2, "")
            assert completed.stderr.startswith(f"error: {tier} does not fit this project: Atlas offers no ")
            continue
        budget = connection_budget.derive({**context, "atlas_tier": tier})
        assert overrides(completed.stdout) == {
            "ReservedConcurrency": str(budget["reserved_concurrency"]),
            "ThrottlingBurstLimit": str(budget["throttling_burst_limit"]),
            "ThrottlingRateLimit": str(budget["throttling_rate_limit"]),
            "ConnectionsCreatedAlarmThreshold": str(budget["connections_alarm_per_minute"]),
            "MonitorConnectTimeoutMS": str(budget["monitor_connect_timeout_ms"]),
            "MaxDocumentDepth": str(limits["max_document_depth"]),
        }
    unknown = run([sys.executable, "tools/tier_overrides.py", "M7"], project)
    assert (unknown.returncode, unknown.stdout) == (2, "") and "'M7' is not an Atlas tier" in unknown.stderr


def test_the_readme_shows_the_environments_and_the_tier_command(baked):
    for combo in COMBOS:
        result = baked[combo_id(combo)]
        section = result.readme.split("### Environments")[1].split("\n### ")[0]
        assert "make deploy ENV=dev" in section and "--config-env" in section
        assert "python3 tools/tier_overrides.py M30" in section
        # every parameter an environment must give (no default) is named there
        required = [name for name, spec in result.template["Parameters"].items() if "Default" not in spec]
        assert [name for name in required if f"`{name}`" not in section] == []


# ---- the host and database patterns agree with the generator ---------------------------------------

HOSTS = [
    "cluster0.abcde.mongodb.net",
    "cluster0-pri.abcde.mongodb.net",
    "cluster0-pl-0.abcde.mongodb.net",
    "cluster0-pl-12-us-east-1.abcde.mongodb.net",
    "cluster0-pl-0-lb.abcde.mongodb.net",
    "cluster0-pl-0-us-east-1-lb.abcde.mongodb.net",
    "pl-0.abcde.mongodb.net",
    "x-pl-0-.abcde.mongodb.net",
    "cluster0-pl-x.abcde.mongodb.net",
    "cluster0-lb.abcde.mongodb.net",
    "cluster0.mongodb.net",
    "Cluster0.abcde.mongodb.net",
    "cluster0.abcde.mongodb.net.",
    "cluster_0.abcde.mongodb.net",
    f"{'a' * 64}.abcde.mongodb.net",
    f"{'a' * 63}.abcde.mongodb.net",
    "a.b.c",
    "cluster0..mongodb.net",
    "-cluster0.abcde.mongodb.net",
]


@pytest.mark.parametrize(
    ("network_mode", "generated_lb"), [(mode, False) for mode in NETWORK_MODES] + [("private_endpoint", True)]
)
def test_the_host_pattern_accepts_what_the_generator_accepts(network_mode, generated_lb, tmp_path):
    """AtlasClusterHost's AllowedPattern takes the hosts the pre-gen hook takes for the project's
    network mode, of the kind (-lb or not) the project was generated for."""
    generated = "cluster0-pl-0-lb.abcde.mongodb.net" if generated_lb else DEV_HOSTS[network_mode]
    answers = default_answers(
        network_mode=network_mode, atlas_cluster_type="sharded", atlas_tier="M30", atlas_cluster_host=generated
    )
    hook = render_hook("pre_gen_project", answers, tmp_path)
    pattern = connection_budget.host_pattern(answers)
    for host in HOSTS:
        try:
            hook.check_atlas_cluster_host({**answers, "atlas_cluster_host": host})
            accepted = connection_budget.load_balanced(host) == generated_lb
        except hook.ValidationError:
            accepted = False
        assert bool(re.fullmatch(pattern, host)) == accepted, host


NAMES = ["app", "orders_dev", "Orders-1", "admin", "Admin", "LOCAL", "config", "configs", "a.b", "a b", "a$b", "a/b"]
NAMES += ["a\\b", 'a"b', "a*b", "a<b", "a>b", "a:b", "a|b", "a?b", "a\0b", "é", "x" * 63, "x" * 64, ""]


@pytest.mark.parametrize("tier", ["M10", "M0"])
def test_the_database_parameter_accepts_what_the_generator_accepts(bake, tier, tmp_path):
    network_mode = "private_endpoint" if tier == "M10" else "nat_gateway"
    result = bake.ok(atlas_tier=tier, network_mode=network_mode)
    spec = result.template["Parameters"]["DatabaseName"]
    hook = render_hook("pre_gen_project", dict(result.context), tmp_path)
    for name in NAMES:
        try:
            hook.check_database_name({**result.context, "database_name": name})
            accepted = True
        except hook.ValidationError:
            accepted = False
        allowed = spec["MinLength"] <= len(name) <= spec["MaxLength"] and re.fullmatch(spec["AllowedPattern"], name)
        assert bool(allowed) == accepted, name


# ---- the post-generation warning about the example host ------------------------------------------


def generate(tmp_path, **answers):
    tmp_path.mkdir()
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(ROOT)]
    completed = run([*command, *(f"{name}={value}" for name, value in answers.items())], tmp_path)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.mark.parametrize("network_mode", NETWORK_MODES)
def test_the_example_hosts_are_cookiecutters_defaults(network_mode, tmp_path):
    hook = render_hook("post_gen_project", default_answers(), tmp_path)
    default = default_answers(network_mode=network_mode)["atlas_cluster_host"]
    assert default in hook.EXAMPLE_HOSTS
    assert hook.placeholder_warning(default_answers(network_mode=network_mode)) is not None


def test_post_gen_warns_while_the_host_is_the_example_and_only_then(tmp_path):
    out = generate(tmp_path / "example", network_mode="peering")
    (warning,) = [line for line in out.splitlines() if line.startswith("WARNING:")]
    assert "atlas_cluster_host is still the example cluster0.abcde.mongodb.net" in warning
    assert "AtlasClusterHost=... in samconfig.toml's parameter_overrides" in warning
    assert out.splitlines()[-1] == warning, "the last line, after the steps"

    out = generate(tmp_path / "real", network_mode="peering", atlas_cluster_host="orders.k3x9q.mongodb.net")
    assert out.startswith("Created orders-service/.")
    assert "WARNING" not in out and "example" not in out
