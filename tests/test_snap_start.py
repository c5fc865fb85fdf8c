"""snap_start=yes: what the generator refuses, what the stack adds (a published version with SnapStart
behind an alias the HTTP API calls, proved by translating the stack with SAM itself), that the linters
accept it, what the deploy role may do for it, and what the README says about it. snap_start=no
changes nothing: its stack is the SnapStart one without the lines SnapStart adds.

The facts the generator encodes are cookiecutter.json's _snap_start table (with its sources); these
tests read them from there."""

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cfnlint
import pytest
from cfn_yaml import load as load_cfn
from conftest import ROOT, TEMPLATE_DEFAULTS, combo_id, default_answers, render_hook, the_function
from partials import stack_section
from test_infrastructure import LINT_RULES, checkov_results, lint_findings, run
from test_readme import readme_section, table_names
from tools import cfn_lint, checkov, sam

SNAP = TEMPLATE_DEFAULTS["_snap_start"]
ALIAS = SNAP["alias"]
# both auth modes, every network mode, both VPC choices and both provisioning choices, each at least once
COMBOS = [
    {"auth_mode": "iam", "network_mode": "private_endpoint", "vpc": "new", "atlas_provisioning": "manual"},
    {
        "auth_mode": "scram",
        "network_mode": "private_endpoint",
        "vpc": "existing",
        "atlas_provisioning": "cloudformation",
    },
    {"auth_mode": "iam", "network_mode": "peering", "vpc": "existing", "atlas_provisioning": "manual"},
    {"auth_mode": "scram", "network_mode": "peering", "vpc": "new", "atlas_provisioning": "cloudformation"},
    {"auth_mode": "iam", "network_mode": "nat_gateway", "vpc": "existing", "atlas_provisioning": "cloudformation"},
    {"auth_mode": "scram", "network_mode": "nat_gateway", "vpc": "existing", "atlas_provisioning": "manual"},
]
PARAMS = [pytest.param(combo, id=combo_id(combo)) for combo in COMBOS]
PIPELINE = Path("pipeline/template.yaml")
# What the deploy role needs only when the stack publishes versions.
PUBLISHING = {"lambda:PublishVersion", "lambda:CreateAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"}
# Handler permissions for what this stack never sets on a version or alias (provisioned concurrency,
# runtime management, scaling) and CodeDeploy's (no DeploymentPreference).
UNUSED = re.compile(r"lambda:(Put|Delete)\w*Config|codedeploy:.*")


@pytest.fixture(scope="module")
def baked(bake):
    """combination id -> baked SnapStart project, and "no-<id>" -> the same combination with snap_start=no."""
    found = {}
    for combo in COMBOS:
        found[combo_id(combo)] = bake.ok(**combo, snap_start="yes")
        found[f"no-{combo_id(combo)}"] = bake.ok(**combo)
    return found


# ---------------------------------------------------------------------------------------------------
# SAM's own translation of the stack


TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(sys.stdin.read())
template["Resources"]["Function"]["Properties"]["CodeUri"] = "s3://artifacts/function.zip"  # as sam package leaves it
parameters = {"AWS::Region": "us-east-1", **json.loads(sys.argv[1])}
print(json.dumps(transform(template, parameters, NoManagedPolicies())))
"""


def translate(project_path, **parameters):
    """The stack as CloudFormation receives it from SAM's transform with these parameter values
    (samtranslator of the SAM CLI's environment, the same library as AWS's hosted transform)."""
    completed = subprocess.run(
        [str(Path(sam()).parent / "python"), "-c", TRANSLATE, json.dumps(parameters)],
        input=(project_path / "template.yaml").read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def translated(baked):
    """combination id -> the stack as SAM's transform gives it to CloudFormation."""
    return {combo_id(combo): translate(baked[combo_id(combo)].project_path) for combo in COMBOS}


# What a deploy gives the parameters without a default that a version's description may hold.
DEPLOYED_VALUES = {
    "AtlasSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders-service-prod/atlas-AbCdEf",
    "PrivateSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"],
    "ExistingSecretsManagerEndpointSecurityGroupId": "sg-0123456789abcdef0",
}


def evaluate(node, values):
    """A Ref, or an Fn::Join, Fn::Select or Fn::Split of them, as CloudFormation evaluates it with these
    parameter values."""
    if "Ref" in node:
        return values[node["Ref"]]
    if "Fn::Select" in node:
        index, items = node["Fn::Select"]
        return evaluate(items, values)[index]
    if "Fn::Split" in node:
        separator, text = node["Fn::Split"]
        return evaluate(text, values).split(separator)
    separator, parts = node["Fn::Join"]
    parts = evaluate(parts, values) if isinstance(parts, dict) else [evaluate(part, values) for part in parts]
    return separator.join(parts)


def of_type(template, kind):
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == kind}


def resource_schema(kind):
    """CloudFormation's resource schema of a type, as cfn-lint ships it."""
    schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
    key = json.loads((schemas / "providers" / "us-east-1.json").read_text(encoding="utf-8"))[kind]
    return json.loads((schemas / "resources" / f"{key}.json").read_text(encoding="utf-8"))


def handler_permissions(kind):
    """The IAM actions CloudFormation's handlers of a resource type need (its resource schema)."""
    return {action for handler in resource_schema(kind)["handlers"].values() for action in handler["permissions"]}


def referenced_parameters(node, template):
    """Names of the template's parameters a node depends on: Ref, ${Name} in Sub, and the parameters of
    the conditions its Fn::If choose by."""
    parameters, conditions = template["Parameters"], template.get("Conditions", {})
    if isinstance(node, dict):
        found = set()
        for key, value in node.items():
            if key == "Ref" and value in parameters:
                found.add(value)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= set(re.findall(r"\$\{(\w+)\}", text)) & set(parameters)
                found |= referenced_parameters(value[1:] if isinstance(value, list) else [], template)
            elif key == "Fn::If":
                found |= referenced_parameters(conditions[value[0]], template)
                found |= referenced_parameters(value[1:], template)
            elif key == "Condition":
                found |= referenced_parameters(conditions[value], template)
            else:
                found |= referenced_parameters(value, template)
        return found
    if isinstance(node, list):
        return set().union(*(referenced_parameters(value, template) for value in node))
    return set()


# ---------------------------------------------------------------------------------------------------
# refusals at generation


def snap_errors(tmp_path, **changes):
    """The hook's errors for the default answers with snap_start=yes and these changes. The answers are
    changed after cookiecutter's own checks, as a replay file hands them to the hook."""
    answers = default_answers(snap_start="yes") | changes
    hook = render_hook("pre_gen_project", answers, tmp_path)
    return [str(error) for error in hook.validate(answers)]


@pytest.mark.parametrize("runtime", ["python3.11", "python3.9", "nodejs22.x"])
def test_a_runtime_before_the_minimum_is_refused_with_snap_start(tmp_path, runtime):
    errors = snap_errors(tmp_path, python_runtime=runtime)
    assert errors == [
        f"snap_start: Lambda SnapStart needs the {SNAP['minimum_python_runtime']} runtime or later, and "
        f"python_runtime is {runtime}; choose a later python_runtime, or snap_start=no"
    ]
    assert snap_errors(tmp_path, python_runtime=runtime, snap_start="no") == []
    for offered in TEMPLATE_DEFAULTS["python_runtime"]:  # every runtime the template offers is recent enough
        assert snap_errors(tmp_path, python_runtime=offered) == [], offered


@pytest.mark.parametrize("region", sorted(SNAP["unsupported_regions"]))
def test_a_region_without_snap_start_is_refused(tmp_path, region):
    errors = snap_errors(tmp_path, aws_region=region)
    assert errors == [
        f"snap_start: Lambda SnapStart for Python is not offered in {region} "
        f"({SNAP['unsupported_regions'][region]}); choose snap_start=no, or another aws_region"
    ]
    assert snap_errors(tmp_path, aws_region=region, snap_start="no") == []
    # a code mistyped in _snap_start would refuse nothing: each is one aws_region accepts
    assert region in render_hook("pre_gen_project", default_answers(), tmp_path).AWS_REGIONS


def test_an_answer_that_is_neither_yes_nor_no_is_refused(tmp_path):
    assert snap_errors(tmp_path, snap_start="true") == ["snap_start: 'true' must be one of no, yes"]


def test_the_cli_refuses_a_region_without_snap_start_and_writes_nothing(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(ROOT)]
    result = run([*command, "snap_start=yes", "aws_region=ap-southeast-6"], cwd=tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert errors == [
        "ERROR: snap_start: Lambda SnapStart for Python is not offered in ap-southeast-6 (Asia Pacific (New "
        "Zealand)); choose snap_start=no, or another aws_region"
    ], result.stderr
    assert list(output.iterdir()) == []


def test_a_replayed_runtime_before_the_minimum_is_refused_and_writes_nothing(tmp_path):
    """cookiecutter checks a choice given on the command line against its list, but a replay file's
    answers reach the hook as they are: python3.11 from a replay stops there."""
    answers = default_answers(snap_start="yes") | {"python_runtime": "python3.11"}
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": {k: v for k, v in answers.items() if not k.startswith("_")}}))
    output = tmp_path / "out"
    output.mkdir()
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    env.pop("COOKIECUTTER_CONFIG", None)
    result = run(
        [sys.executable, "-m", "cookiecutter", "-o", str(output), "--replay-file", str(replay), str(ROOT)],
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert errors == [
        f"ERROR: snap_start: Lambda SnapStart needs the {SNAP['minimum_python_runtime']} runtime or later, and "
        "python_runtime is python3.11; choose a later python_runtime, or snap_start=no"
    ], result.stderr
    assert list(output.iterdir()) == []


# ---------------------------------------------------------------------------------------------------
# the stack


@pytest.mark.parametrize("combo", PARAMS)
def test_the_function_publishes_a_snap_start_version_behind_the_alias(combo, baked):
    template = baked[combo_id(combo)].template
    function = the_function(template)
    assert function["AutoPublishAlias"] == ALIAS
    assert function["AutoPublishAliasAllProperties"] is True
    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert template["Outputs"]["FunctionAliasArn"]["Value"] == {"Ref": "Function.Alias"}
    # what SnapStart excludes is set nowhere (_snap_start's excluded_features)
    assert not {"ProvisionedConcurrencyConfig", "FileSystemConfigs", "EphemeralStorage"} & set(function)


@pytest.mark.parametrize("combo", PARAMS)
def test_the_stack_is_exactly_what_its_partials_define(combo, baked):
    """As for every combination without SnapStart (test_infrastructure.py): snap_start/yes.yaml is one
    more partial, whose output is the alias's ARN."""
    result = baked[combo_id(combo)]
    for section in ("parameters", "conditions", "resources", "outputs"):
        per_partial = stack_section(result.context, section)
        merged = {name: value for definitions in per_partial.values() for name, value in definitions.items()}
        assert result.template.get(section.title(), {}) == merged, section
    assert set(stack_section(result.context, "outputs")["stack/snap_start/yes.yaml"]) == {"FunctionAliasArn"}


@pytest.mark.parametrize("combo", PARAMS)
def test_sam_points_the_api_and_its_permissions_at_the_alias(combo, translated):
    template = translated[combo_id(combo)]
    (alias_name, alias), (version_name, _version) = (
        *of_type(template, "AWS::Lambda::Alias").items(),
        *of_type(template, "AWS::Lambda::Version").items(),
    )
    assert alias["Properties"]["Name"] == ALIAS
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_name, "Version"]}
    assert template["Outputs"]["FunctionAliasArn"]["Value"] == {"Ref": alias_name}
    (api,) = of_type(template, "AWS::ApiGatewayV2::Api").values()
    uris = [
        operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for path in api["Properties"]["Body"]["paths"].values()
        for operation in path.values()
    ]
    assert len(uris) == len(TEMPLATE_DEFAULTS["_http_routes"])
    assert all(f"/functions/${{{alias_name}}}/invocations" in uri for uri in uris), uris
    permissions = of_type(template, "AWS::Lambda::Permission").values()
    callers = [each for each in permissions if each["Properties"]["Principal"] == "apigateway.amazonaws.com"]
    assert len(callers) == len(uris)
    assert all(permission["Properties"]["FunctionName"] == {"Ref": alias_name} for permission in callers)


@pytest.mark.parametrize("combo", PARAMS)
def test_a_new_value_of_any_parameter_the_function_reads_publishes_a_version(combo, baked, translated):
    """SAM names the version after the template as written, so a parameter's new value alone would not
    publish: the version's Description carries every parameter the function's configuration reads, and a
    new Description replaces the version (it is create-only in AWS::Lambda::Version's schema)."""
    template = baked[combo_id(combo)].template
    function = dict(the_function(template))
    description = function.pop("VersionDescription")
    for function_level in ("ReservedConcurrentExecutions", "Events"):  # not part of a version
        function.pop(function_level)
    read = referenced_parameters(function, template)
    assert {"AtlasClusterHost", "DatabaseName"} <= read
    assert referenced_parameters(description, template) == read
    ((name, version),) = of_type(translated[combo_id(combo)], "AWS::Lambda::Version").items()
    assert version["Properties"]["Description"] == description
    # SAM alone would not publish: another host gives the same version
    elsewhere = translate(baked[combo_id(combo)].project_path, AtlasClusterHost="cluster9.zzzzz.mongodb.net")
    assert set(of_type(elsewhere, "AWS::Lambda::Version")) == {name}
    schema = resource_schema("AWS::Lambda::Version")
    assert "/properties/Description" in schema["createOnlyProperties"]
    # and this project's values fit in it: the defaults, and realistic values for the rest
    values = {name: str(spec["Default"]) for name, spec in template["Parameters"].items() if "Default" in spec}
    values |= DEPLOYED_VALUES
    assert len(evaluate(description, values)) <= schema["properties"]["Description"]["maxLength"]


@pytest.mark.parametrize("combo", PARAMS)
def test_snap_start_only_adds_to_the_stack(combo, baked):
    """The stack with snap_start=no is the SnapStart one without the lines SnapStart adds, and with the
    handler's module app instead of snapshot (whose import registers the runtime hooks): nothing else
    differs (and so a project generated before the answer existed renders as it did)."""
    without = (baked[f"no-{combo_id(combo)}"].project_path / "template.yaml").read_text().splitlines()
    with_it = (baked[combo_id(combo)].project_path / "template.yaml").read_text().splitlines()
    package = baked[combo_id(combo)].context["package_name"]
    handlers = [
        [line.strip() for line in lines if line.strip().startswith(f"Handler: {package}.")]
        for lines in (without, with_it)
    ]
    assert handlers == [[f"Handler: {package}.app.handler"], [f"Handler: {package}.snapshot.handler"]]
    with_it = [line.replace(f"{package}.snapshot.handler", f"{package}.app.handler") for line in with_it]
    blocks = difflib.SequenceMatcher(None, without, with_it, autojunk=False).get_opcodes()
    assert {tag for tag, *_ in blocks} == {"equal", "insert"}, [block for block in blocks if block[0] != "equal"]
    added = "\n".join(line for tag, _, _, start, end in blocks if tag == "insert" for line in with_it[start:end])
    keys = (
        "AutoPublishAlias:",
        "AutoPublishAliasAllProperties:",
        "VersionDescription:",
        "SnapStart:",
        "FunctionAliasArn:",
    )
    for key in keys:
        assert key in added and key not in "\n".join(without)


# ---------------------------------------------------------------------------------------------------
# the linters


@pytest.fixture(scope="module")
def snap_templates(baked, tmp_path_factory):
    folder = tmp_path_factory.mktemp("snap-templates")
    for combo in COMBOS:
        shutil.copyfile(baked[combo_id(combo)].project_path / "template.yaml", folder / f"{combo_id(combo)}.yaml")
    return folder


@pytest.fixture(scope="module")
def snap_lint_findings(baked, snap_templates):
    schemas = ",".join(
        str(baked[combo_id(combo)].project_path / "registry-schemas")
        for combo in COMBOS
        if combo["atlas_provisioning"] == "cloudformation"
    )
    files = sorted(str(path) for path in snap_templates.glob("*.yaml"))
    return lint_findings([cfn_lint(), "--format", "json", *LINT_RULES, "--registry-schemas", schemas, "--", *files])


@pytest.fixture(scope="module")
def snap_checkov_report(snap_templates):
    command = [checkov(), "--framework", "cloudformation", "--skip-download", "--compact", "-o", "json"]
    result = run([*command, "-d", str(snap_templates)], env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.mark.parametrize("combo", PARAMS)
def test_cfn_lint_and_checkov_accept_the_snap_start_stack(combo, baked, snap_lint_findings, snap_checkov_report):
    assert "SnapStart" in the_function(baked[combo_id(combo)].template), "not a SnapStart stack"
    findings = snap_lint_findings.get(combo_id(combo), [])
    assert not findings, [(finding["Rule"]["Id"], finding["Message"]) for finding in findings]
    assert not checkov_results(snap_checkov_report, combo_id(combo), "failed_checks")
    assert checkov_results(snap_checkov_report, combo_id(combo), "passed_checks"), "checkov evaluated nothing"


@pytest.mark.slow
@pytest.mark.parametrize("combo", PARAMS)
def test_sam_validate_lint_accepts_the_snap_start_stack(combo, baked):
    result = baked[combo_id(combo)]
    assert "SnapStart" in the_function(result.template), "not a SnapStart stack"
    completed = run(
        [sam(), "validate", "--lint", "--template-file", "template.yaml", "--region", result.context["aws_region"]],
        cwd=result.project_path,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


# ---------------------------------------------------------------------------------------------------
# the deploy role


def execution_role_actions(project_path, env):
    role = load_cfn(project_path / PIPELINE)["Resources"][f"{env}CloudFormationExecutionRole"]["Properties"]
    return {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }


@pytest.mark.parametrize("combo", PARAMS)
def test_the_deploy_role_may_publish_versions_and_move_the_alias_only_with_snap_start(combo, baked, translated):
    generated = {resource["Type"] for resource in translated[combo_id(combo)]["Resources"].values()} & {
        "AWS::Lambda::Version",
        "AWS::Lambda::Alias",
    }
    assert generated == {"AWS::Lambda::Version", "AWS::Lambda::Alias"}
    needed = {action for kind in generated for action in handler_permissions(kind) if not UNUSED.fullmatch(action)}
    for env in ("Dev", "Prod"):
        allowed = execution_role_actions(baked[combo_id(combo)].project_path, env)
        assert needed <= allowed, f"{env}: {sorted(needed - allowed)}"
        without = execution_role_actions(baked[f"no-{combo_id(combo)}"].project_path, env)
        assert not PUBLISHING & without, f"{env}: {sorted(PUBLISHING & without)} without snap_start"


# ---------------------------------------------------------------------------------------------------
# the README


@pytest.mark.parametrize("combo", PARAMS)
def test_the_readme_explains_snap_start_and_names_the_alias_output(combo, baked):
    result = baked[combo_id(combo)]
    deploy = readme_section(result.readme, "deploy")
    outputs_table = deploy.split("| output |", 1)[1].split("###", 1)[0]
    assert table_names(outputs_table) == set(result.template["Outputs"])
    assert deploy.count("### SnapStart") == 1
    section = " ".join(deploy.split("### SnapStart", 1)[1].split("\n### ", 1)[0].split())
    for words in (
        "156 ms",
        "245 ms",
        "at least 3 hours",
        "charge per GB each time an environment is restored",
        "aws lambda delete-function",
        f"--name {ALIAS}",
        "`Resource` = `<function name>:" + ALIAS + "`",
        "closes the database client",
        "ObjectId process value and counter",
        "`ColdStart` metric counts 1 once per restored environment",
        "What could not be proven without AWS",
        SNAP["minimum_python_runtime"],
        *SNAP["unsupported_regions"],
        *SNAP["excluded_features"],
    ):
        assert words in section, words
    budget = readme_section(result.readme, "budget")
    assert "Lambda does not combine it with SnapStart" in " ".join(budget.split())
    # and without it, none of this
    readme = baked[f"no-{combo_id(combo)}"].readme
    assert "### SnapStart" not in readme and "FunctionAliasArn" not in readme
    assert "SnapStart" not in readme_section(readme, "budget")
