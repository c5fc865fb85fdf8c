"""Infrastructure: the rendered template.yaml of every combination passes cfn-lint with the serverless
rules, checkov and `sam validate --lint`, plus our own checks for what those miss; `sam build` works for
the default project on both architectures. With atlas_provisioning=cloudformation the MongoDB::Atlas
resources are also checked against their registry schemas (tools/cfn_lint_registry.py), and wired as the
types need.

The linters run once per module over all 24 templates (one cfn-lint call, one checkov call, and one call of
the registry-schema wrapper over the cloudformation ones), and each combination's test reads its own
findings from that batch. Tools are found through environment variables
(CFN_LINT, CHECKOV, SAM) or in their default places; a missing tool fails the test when CI is set and
skips it otherwise.
"""

import ast
import copy
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import botocore.session
import pytest
from cfn_yaml import load as load_cfn
from conftest import MATRIX, RESERVED_LAMBDA_VARIABLES, TEMPLATE_DEFAULTS, combo_id, deployed_variables, the_function
from partials import stack_section
from tools import cfn_lint, checkov, sam

import connection_budget

IDS = [combo_id(combo) for combo in MATRIX]
PARAMS = [pytest.param(combo, id=combo_id(combo)) for combo in MATRIX]
PROVISIONED = [combo for combo in MATRIX if combo["atlas_provisioning"] == "cloudformation"]
ATLAS = "MongoDB::Atlas::"
GETATT_CONNECTION = {"Fn::GetAtt": ["AtlasNetworkPeering", "ConnectionId"]}
PIPELINE = Path("pipeline/template.yaml")


def provisioned(combo):
    """Whether the stack declares the Atlas side itself (atlas_provisioning=cloudformation)."""
    return combo["atlas_provisioning"] == "cloudformation"


def credentials_secret(combo):
    """The one secret a scram function reads: the stack's own, or the one whose ARN it is given."""
    return {"Ref": "AtlasCredentialsSecret"} if provisioned(combo) else {"Ref": "AtlasSecretArn"}


def _atlas_property(resource, change):
    """A mistake that changes one MongoDB::Atlas resource's Properties."""
    return lambda template: change(template["Resources"][resource]["Properties"])


# One mistake each in a copy of a cloudformation template, and the cfn-lint rule that must report it once
# the registry schemas are checked: name -> (combination, mistake, rule, what the message names).
MISTAKES = {
    "misspelt-property": (
        "iam-peering-new-cloudformation",
        _atlas_property("AtlasDatabaseUser", lambda user: user.update(AWSIAMTyp=user.pop("AWSIAMType"))),
        "E3002",
        "AWSIAMTyp",
    ),
    "value-outside-its-enum": (
        "iam-private_endpoint-new-cloudformation",
        _atlas_property("AtlasDatabaseUser", lambda user: user.update(AWSIAMType="IAM_ROLE")),
        "E3030",
        "IAM_ROLE",
    ),
    "required-property-missing": (
        "scram-peering-existing-cloudformation",
        _atlas_property("AtlasNetworkPeering", lambda peering: peering.pop("ContainerId")),
        "E3003",
        "ContainerId",
    ),
    "property-of-the-wrong-type": (
        "scram-private_endpoint-existing-cloudformation",
        _atlas_property("AtlasPrivateEndpoint", lambda endpoint: endpoint.update(EnforceConnectionSuccess=[True])),
        "E3012",
        "boolean",
    ),
    "getatt-of-an-attribute-the-type-does-not-return": (
        "iam-peering-new-cloudformation",
        _atlas_property(
            "AtlasPeeringAccepter",
            lambda accepter: accepter.update(VpcId={"Fn::GetAtt": ["AtlasNetworkPeering", "VpcId"]}),
        ),
        "E1010",
        "VpcId",
    ),
    "output-of-an-attribute-the-type-does-not-return": (
        "scram-peering-new-cloudformation",
        lambda template: template["Outputs"].update(
            AtlasVpc={"Value": {"Fn::GetAtt": ["AtlasNetworkContainer", "VpcId"]}, "Condition": "CreateAtlasContainer"}
        ),
        "E6101",
        "VpcId",
    ),
}
MISSPELT = "misspelt-property.json"

CREDENTIAL_PATTERNS = [
    re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@]*:[^/\s@]*@", re.IGNORECASE),  # user:password@ in a URI
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # an AWS access key id
    re.compile(r"(password|passwd|pwd|token)\s*[=:]\s*\S", re.IGNORECASE),  # key=value credentials
]

ROUTES = {(route["method"], route["path"]) for route in TEMPLATE_DEFAULTS["_http_routes"]}
# An endpoint security group's placeholder rule: "no egress at all" (an empty list would mean allow-all).
NO_EGRESS = {"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "CidrIp": "255.255.255.255/32"}
ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}


# ---------------------------------------------------------------------------------------------------
# finding the tools


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


@pytest.mark.parametrize(("ci", "outcome"), [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_tool_fails_in_ci_and_skips_locally(ci, outcome, monkeypatch, tmp_path):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("CHECKOV", str(tmp_path / "no-such-checkov"))
    with pytest.raises(outcome, match="set CHECKOV"):
        checkov()


# ---------------------------------------------------------------------------------------------------
# baking every combination once per module, and the batched linters


@pytest.fixture(scope="module")
def baked(bake):
    """combination id -> pytest-cookies result, all 24 combinations."""
    return {combo_id(combo): bake.ok(**combo) for combo in MATRIX}


@pytest.fixture(scope="module")
def templates(baked, tmp_path_factory):
    """A folder holding every combination's template.yaml as <combination>.yaml, for batched linting."""
    folder = tmp_path_factory.mktemp("templates")
    for name, result in baked.items():
        shutil.copyfile(result.project_path / "template.yaml", folder / f"{name}.yaml")
    # the deploy roles' stack, linted in the batch once per distinct text (it differs only in what the
    # stack keeps in Secrets Manager): pipeline_copies names the copy that stands for each combination
    for name, stand_in in pipeline_copies(baked).items():
        if not (folder / f"{stand_in}.yaml").exists():
            shutil.copyfile(baked[name].project_path / PIPELINE, folder / f"{stand_in}.yaml")
    return folder


def pipeline_copies(baked):
    """For each combination, the name of the batch's copy of its pipeline/template.yaml: the first
    combination with the same text."""
    first = {}
    return {
        name: first.setdefault((result.project_path / PIPELINE).read_text(encoding="utf-8"), f"pipeline-{name}")
        for name, result in baked.items()
    }


def lint_findings(command):
    """cfn-lint's JSON findings, by template file name without its suffix."""
    result = run(command)
    assert result.returncode in (0, 2, 4, 6, 8, 10, 12, 14), result.stderr
    findings = {}
    for finding in json.loads(result.stdout or "[]"):
        findings.setdefault(Path(finding["Filename"]).stem, []).append(finding)
    return findings


LINT_RULES = ["--append-rules", "cfn_lint_serverless.rules", "--include-checks", "I"]  # informational too


@pytest.fixture(scope="module")
def registry_schemas(baked):
    """The registry-schemas/ folder of every cloudformation bake, for --registry-schemas (cfn-lint keys
    the schemas by typeName; each project's folder holds exactly its own types, a test below checks)."""
    return ",".join(str(baked[combo_id(combo)].project_path / "registry-schemas") for combo in PROVISIONED)


@pytest.fixture(scope="module")
def mistakes(baked, tmp_path_factory):
    """A folder of copies of cloudformation templates with one MISTAKES entry each, as JSON templates."""
    folder = tmp_path_factory.mktemp("mistakes")
    for name, (combo, make, _rule, _named) in MISTAKES.items():
        template = copy.deepcopy(baked[combo].template)
        make(template)
        (folder / f"{name}.json").write_text(json.dumps(template), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def cfn_lint_findings(templates, registry_schemas, mistakes, tmp_path_factory):
    """combination -> cfn-lint findings (errors, warnings, informational), from one call over all templates,
    with every registry schema the cloudformation templates need.

    A canary copy without tracing rides along: it must get WS1000, which proves the serverless rules ran.
    So does the misspelt-property mistake, which this plain cfn-lint does not catch (see its test).
    """
    canary_dir = tmp_path_factory.mktemp("canary")
    canary = canary_dir / "canary.yaml"
    canary.write_text((templates / f"{IDS[0]}.yaml").read_text().replace("      Tracing: Active\n", ""))
    files = [*sorted(str(path) for path in templates.glob("*.yaml")), str(canary), str(mistakes / MISSPELT)]
    findings = lint_findings(
        [cfn_lint(), "--format", "json", *LINT_RULES, "--registry-schemas", registry_schemas, "--", *files]
    )
    canary_rules = {finding["Rule"]["Id"] for finding in findings.pop("canary", [])}
    assert "WS1000" in canary_rules, f"cfn-lint-serverless rules did not run (canary got {canary_rules})"
    return findings


@pytest.fixture(scope="module")
def registry_lint_findings(baked, templates, registry_schemas, mistakes):
    """cloudformation combination or mistake -> findings of the rendered tools/cfn_lint_registry.py (cfn-lint
    that checks registry types' properties and GetAtt attributes too), from one call over all of them."""
    wrapper = baked[combo_id(PROVISIONED[0])].project_path / "tools" / "cfn_lint_registry.py"
    python = Path(cfn_lint()).parent / "python"  # the interpreter whose cfn-lint the wrapper patches
    files = [str(templates / f"{combo_id(combo)}.yaml") for combo in PROVISIONED]
    files += [str(mistakes / f"{name}.json") for name in MISTAKES]
    command = [str(python), str(wrapper), "--format", "json", *LINT_RULES, "--registry-schemas", registry_schemas]
    return lint_findings([*command, "--", *files])


@pytest.fixture(scope="module")
def checkov_report(templates):
    """checkov's JSON report over the folder of templates (one call)."""
    command = [checkov(), "--framework", "cloudformation", "--skip-download", "--compact", "-o", "json"]
    result = run(
        [*command, "-d", str(templates)],
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["check_type"] == "cloudformation"
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    return report


def checkov_results(report, name, kind):
    return [check for check in report["results"].get(kind, []) if Path(check["file_path"]).stem == name]


# ---------------------------------------------------------------------------------------------------
# helpers over a parsed template


def template_of(baked, combo):
    return baked[combo_id(combo)].template


def walk(node, path=()):
    """Yield (path, value) for every scalar in a parsed template."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))
    else:
        yield path, node


def policy_statements(template):
    """Every IAM statement in the template, with where it is (roles, inline policies, endpoint policies)."""
    for path, value in walk(template):
        if path and path[-1] in ("Action", "NotAction"):
            yield path, value


def database_timeout_budget_ms(project_path, package_name):
    """serverSelectionTimeoutMS (which bounds connecting too) plus the deadline margin the code keeps back."""
    package = project_path / "src" / package_name

    def constant(module, name):
        tree = ast.parse((package / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                return ast.literal_eval(node.value)
        raise AssertionError(f"{name} not found in {module}: the timeout budget check needs it")

    return constant("database.py", "URI_DEFAULTS")["serverSelectionTimeoutMS"] + constant(
        "config.py", "DEADLINE_MARGIN_MS"
    )


# ---------------------------------------------------------------------------------------------------
# the linters, per combination


@pytest.mark.parametrize("combo", PARAMS)
def test_cfn_lint_with_serverless_rules_is_clean(combo, cfn_lint_findings):
    findings = cfn_lint_findings.get(combo_id(combo), [])
    assert findings == [], "\n".join(
        f"{f['Rule']['Id']} {f['Level']} line {f['Location']['Start']['LineNumber']}: {f['Message']}" for f in findings
    )


@pytest.mark.parametrize("combo", [pytest.param(combo, id=combo_id(combo)) for combo in PROVISIONED])
def test_atlas_resources_match_their_registry_schemas(combo, registry_lint_findings):
    """cfn-lint through the rendered tools/cfn_lint_registry.py: every MongoDB::Atlas resource's properties
    and every GetAtt of one checked against the type's schema (and everything plain cfn-lint checks)."""
    findings = registry_lint_findings.get(combo_id(combo), [])
    assert findings == [], "\n".join(
        f"{f['Rule']['Id']} {f['Level']} line {f['Location']['Start']['LineNumber']}: {f['Message']}" for f in findings
    )


@pytest.mark.parametrize("name", MISTAKES)
def test_the_registry_schema_check_catches(name, registry_lint_findings):
    *_, rule, named = MISTAKES[name]
    found = [(finding["Rule"]["Id"], finding["Message"]) for finding in registry_lint_findings.get(name, [])]
    assert any(rule_id == rule and named in message for rule_id, message in found), found


def test_plain_cfn_lint_does_not_check_registry_properties(cfn_lint_findings):
    """The reason for tools/cfn_lint_registry.py: cfn-lint 1.43.0 and later (1.58.0 here) load
    --registry-schemas and then skip those types' properties. If this fails, cfn-lint checks them again
    itself: the wrapper, and this test, can go."""
    found = [(finding["Rule"]["Id"], finding["Message"]) for finding in cfn_lint_findings.get(Path(MISSPELT).stem, [])]
    assert not [rule for rule, _ in found if rule.startswith("E3")], found


def test_the_registry_wrapper_refuses_to_run_when_its_patch_has_no_effect(baked):
    """A cfn-lint upgrade that leaves the patch without effect must stop the lint, not pass it unchecked."""
    project = baked[combo_id(PROVISIONED[0])].project_path
    undo_the_patch = (
        "import runpy, sys\n"
        "wrapper = runpy.run_path('tools/cfn_lint_registry.py', run_name='wrapper')\n"
        "from cfnlint.schema import manager\n"
        "manager.ProviderSchemaManager.get_resource_schemas_by_regions = wrapper['_index_only']\n"
        "sys.exit(wrapper['run'](['--registry-schemas', 'registry-schemas', '--', 'template.yaml']))\n"
    )
    refused = run([str(Path(cfn_lint()).parent / "python"), "-c", undo_the_patch], cwd=project)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "no longer checks registry types' properties" in refused.stderr
    checked = run(
        [str(Path(cfn_lint()).parent / "python"), "tools/cfn_lint_registry.py", "--", "template.yaml"], cwd=project
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr  # .cfnlintrc.yaml names registry-schemas/


@pytest.mark.parametrize("combo", PARAMS)
def test_pipeline_stack_is_lint_clean(combo, baked, cfn_lint_findings, checkov_report):
    """pipeline/template.yaml (the roles the deploy workflow assumes), as this combination renders it:
    cfn-lint with the serverless rules finds nothing, checkov fails nothing, and each of its skips gives
    a reason."""
    copy = pipeline_copies(baked)[combo_id(combo)]
    findings = cfn_lint_findings.get(copy, [])
    assert not findings, [(finding["Rule"]["Id"], finding["Message"]) for finding in findings]
    assert not checkov_results(checkov_report, copy, "failed_checks")
    assert checkov_results(checkov_report, copy, "passed_checks"), "checkov evaluated nothing in it"
    skipped = checkov_results(checkov_report, copy, "skipped_checks")
    for skip in skipped:
        reason = skip["check_result"].get("suppress_comment", "")
        assert len(reason.split()) >= 8, f"{skip['check_id']} on {skip['resource']} is skipped without a real reason"
    assert {skip["check_id"] for skip in skipped} == {"CKV_AWS_18", "CKV_AWS_111"}, "a new skip: reason it here too"


# the IAM service prefix CloudFormation needs for each kind of resource template.yaml declares (SAM's own
# types become these); MongoDB::Atlas handlers run as their activation's role and read their key's secret
SERVICE_OF_TYPE = {
    "AWS::EC2::": "ec2",
    "AWS::IAM::": "iam",
    "AWS::Lambda::": "lambda",
    "AWS::Serverless::Function": "lambda",
    "AWS::Serverless::HttpApi": "apigateway",
    "AWS::ApiGatewayV2::": "apigateway",
    "AWS::Logs::": "logs",
    "AWS::CloudWatch::": "cloudwatch",
    "AWS::SecretsManager::": "secretsmanager",
    "Custom::": "lambda",
    ATLAS: "secretsmanager",
}


@pytest.mark.parametrize("combo", PARAMS)
def test_pipeline_execution_role_may_create_every_kind_of_resource_the_stack_declares(combo, baked):
    """Each environment's CloudFormation execution role allows the service of every resource type
    template.yaml declares; a new kind of resource in the stack fails here until pipeline/template.yaml
    allows it."""
    pipeline = load_cfn(baked[combo_id(combo)].project_path / PIPELINE)
    for env in ("Dev", "Prod"):
        role = pipeline["Resources"][f"{env}CloudFormationExecutionRole"]["Properties"]
        actions = [
            action
            for policy in role["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
            for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        ]
        services = {action.split(":", 1)[0] for action in actions}
        needed = set()
        for name, resource in template_of(baked, combo)["Resources"].items():
            kind = resource["Type"]
            service = next((svc for prefix, svc in SERVICE_OF_TYPE.items() if kind.startswith(prefix)), None)
            assert service, f"{name}: no service known for {kind}: add it to SERVICE_OF_TYPE"
            assert service in services, f"{env}: {name} ({kind}) needs {service}, not allowed"
            needed.add(service)
        # and no more: Secrets Manager (and KMS through it) only where the stack keeps something there
        assert ("secretsmanager" in services) == ("secretsmanager" in needed), f"{env}: {sorted(services)}"
        assert ("kms" in services) == (combo["auth_mode"] == "scram" and provisioned(combo)), env
        if combo["network_mode"] == "peering" and provisioned(combo):
            assert "lambda:InvokeFunction" in actions, "the peering accepter is a Lambda-backed custom resource"


@pytest.mark.parametrize("combo", PARAMS)
def test_checkov_fails_nothing_and_every_skip_has_a_reason(combo, checkov_report):
    name = combo_id(combo)
    failed = checkov_results(checkov_report, name, "failed_checks")
    assert failed == [], [(check["check_id"], check["resource"], check["check_name"]) for check in failed]
    assert checkov_results(checkov_report, name, "passed_checks"), "checkov evaluated nothing in this template"
    for skip in checkov_results(checkov_report, name, "skipped_checks"):
        reason = skip["check_result"].get("suppress_comment", "")
        assert len(reason.split()) >= 8, f"{skip['check_id']} on {skip['resource']} is skipped without a real reason"


@pytest.mark.slow
@pytest.mark.parametrize("combo", PARAMS)
def test_sam_validate_lint_passes(combo, baked):
    result = baked[combo_id(combo)]
    completed = run(
        [sam(), "validate", "--lint", "--template-file", "template.yaml", "--region", result.context["aws_region"]],
        cwd=result.project_path,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


# ---------------------------------------------------------------------------------------------------
# our own checks, per combination


@pytest.mark.parametrize("combo", PARAMS)
def test_memory_and_timeout_are_within_limits_and_above_the_database_budget(combo, baked):
    result = baked[combo_id(combo)]
    function = the_function(template_of(baked, combo))
    assert isinstance(function["MemorySize"], int) and 128 <= function["MemorySize"] <= 10240
    assert isinstance(function["Timeout"], int) and 3 <= function["Timeout"] <= 900
    budget_ms = database_timeout_budget_ms(result.project_path, result.context["package_name"])
    assert function["Timeout"] * 1000 > budget_ms, (
        f"Timeout {function['Timeout']} s leaves no room for server selection and the margin ({budget_ms} ms)"
    )


@pytest.mark.parametrize("combo", PARAMS)
def test_environment_has_no_reserved_variable_and_no_credentials(combo, baked):
    result = baked[combo_id(combo)]
    template = template_of(baked, combo)
    variables = deployed_variables(template)
    assert not RESERVED_LAMBDA_VARIABLES & set(variables)
    assert variables["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
    assert variables["MONGODB_DATABASE"] == result.context["database_name"]
    host, pool = result.context["atlas_cluster_host"], result.context["_max_pool_size"]
    if combo["auth_mode"] == "iam":
        expected = f"mongodb+srv://{host}/?authSource=%24external&authMechanism=MONGODB-AWS&retryWrites=true&w=majority"
        assert "MONGODB_SECRET_ARN" not in variables
    else:
        # no authMechanism: the driver negotiates (M0 and Flex offer SCRAM-SHA-1 only)
        expected = f"mongodb+srv://{host}/?authSource=admin&retryWrites=true&w=majority"
        assert variables["MONGODB_SECRET_ARN"] == credentials_secret(combo)
    monitors = connection_budget.derive(result.context)["monitor_connect_timeout_ms"]
    assert variables["MONGODB_URI"] == f"{expected}&maxPoolSize={pool}&connectTimeoutMS={monitors}"
    for name, value in variables.items():
        if re.search(r"PASSWORD|SECRET|TOKEN|KEY", name):
            assert isinstance(value, dict), f"{name} holds a literal value; only ARNs by reference belong here"
    for path, value in walk(template):
        if isinstance(value, str):
            for pattern in CREDENTIAL_PATTERNS:
                assert not pattern.search(value), f"credential-like value at {'/'.join(map(str, path))}"


@pytest.mark.parametrize("combo", PARAMS)
def test_iam_is_least_privilege(combo, baked):
    template = template_of(baked, combo)
    resources = template["Resources"]
    for path, actions in policy_statements(template):
        assert path[-1] == "Action", f"NotAction at {path}"
        for action in actions if isinstance(actions, list) else [actions]:
            assert isinstance(action, str) and "*" not in action, f"wildcard action {action!r} at {path}"
    assert "Policies" not in the_function(template), "the function's permissions belong on FunctionRole"
    assert the_function(template)["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    role = resources["FunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"},
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"},
    ]
    secret_statements = [
        (path, actions)
        for path, actions in policy_statements(template)
        if any("secretsmanager:" in action for action in (actions if isinstance(actions, list) else [actions]))
    ]
    if combo["auth_mode"] == "iam":
        assert secret_statements == []
        assert "Policies" not in role
        return
    assert len(secret_statements) == 2  # the role's grant and the endpoint policy
    for path, actions in secret_statements:
        statement = template
        for key in path[:-1]:
            statement = statement[key]
        assert actions == "secretsmanager:GetSecretValue"
        assert statement["Resource"] == credentials_secret(combo), f"{path}: not scoped to the one secret"
    kms = role["Policies"][0]["PolicyDocument"]["Statement"][1]["Fn::If"][1]
    assert kms["Action"] == "kms:Decrypt" and kms["Resource"] == {"Ref": "AtlasSecretKmsKeyArn"}
    assert "kms:ViaService" in kms["Condition"]["StringEquals"]


@pytest.mark.parametrize("section", ["parameters", "conditions", "resources", "outputs"])
@pytest.mark.parametrize("combo", PARAMS)
def test_each_section_is_exactly_what_the_chosen_partials_define(combo, section, baked):
    """template.yaml stitches the partials of its choices, each name defined by exactly one of them."""
    result = baked[combo_id(combo)]
    per_partial = stack_section(result.context, section)
    names = [name for definitions in per_partial.values() for name in definitions]
    assert len(names) == len(set(names)), f"two partials define the same {section[:-1]}: {sorted(names)}"
    merged = {name: value for definitions in per_partial.values() for name, value in definitions.items()}
    assert result.template.get(section.title(), {}) == merged
    if section in ("resources", "outputs"):
        network = next(path for path in per_partial if path.startswith("stack/network/"))
        assert per_partial[network] or combo["vpc"] == "existing", f"{network} adds no {section}"


@pytest.mark.parametrize("combo", PARAMS)
def test_function_runs_in_the_vpcs_private_subnets(combo, baked):
    template = template_of(baked, combo)
    function = the_function(template)
    vpc_config = function["VpcConfig"]
    assert vpc_config["SecurityGroupIds"] == [{"Ref": "FunctionSecurityGroup"}]
    if combo["vpc"] == "new":
        assert vpc_config["SubnetIds"] == [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}]
        vpc = template["Resources"]["Vpc"]["Properties"]
        assert vpc["EnableDnsHostnames"] is True and vpc["EnableDnsSupport"] is True
        cidr = template["Parameters"]["VpcCidr"]["Default"]
        assert not cidr.startswith("192.168."), "the default VPC CIDR must not overlap Atlas's 192.168.248.0/21"
        zones = {
            template["Resources"][name]["Properties"]["AvailabilityZone"]["Fn::Select"][0]
            for name in ("PrivateSubnetA", "PrivateSubnetB")
        }
        assert zones == {0, 1}, "the private subnets must be in two availability zones"
    else:
        assert vpc_config["SubnetIds"] == {"Ref": "PrivateSubnetIds"}
        parameters = template["Parameters"]
        assert parameters["VpcId"]["Type"] == "AWS::EC2::VPC::Id"
        assert parameters["PrivateSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"

    if combo["network_mode"] == "peering":
        routes = [
            resource
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::EC2::Route" and "VpcPeeringConnectionId" in resource["Properties"]
        ]
        assert routes, "peering needs routes to the Atlas CIDR block"
        for route in routes:
            assert route["Properties"]["DestinationCidrBlock"] == {"Ref": "AtlasCidrBlock"}
            if provisioned(combo):  # the stack's own peering, active once its accepter is done
                assert route["Properties"]["VpcPeeringConnectionId"] == GETATT_CONNECTION
                assert route["DependsOn"] == "AtlasPeeringAccepter", "a route must wait for the accepted peering"
            else:
                assert route["Properties"]["VpcPeeringConnectionId"] == {"Ref": "PeeringConnectionId"}
                assert route["Condition"] in template["Conditions"], "a route must wait for the peering connection"
    if combo["network_mode"] == "private_endpoint":
        endpoint = template["Resources"]["AtlasVpcEndpoint"]["Properties"]
        assert endpoint["VpcEndpointType"] == "Interface"
        service = (
            {"Fn::GetAtt": ["AtlasPrivateEndpointService", "EndpointServiceName"]}
            if provisioned(combo)
            else {"Ref": "AtlasEndpointServiceName"}
        )
        assert endpoint["ServiceName"] == service
        ingress = template["Resources"]["AtlasEndpointIngressFromFunction"]["Properties"]
        assert (ingress["FromPort"], ingress["ToPort"]) == (1024, 65535)
        assert ingress["SourceSecurityGroupId"] == {"Ref": "FunctionSecurityGroup"}
    if combo["auth_mode"] == "scram":
        endpoint = template["Resources"]["SecretsManagerEndpoint"]["Properties"]
        assert endpoint["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.secretsmanager"}


# The example value of an interface endpoint's DnsEntries in CloudFormation's AWS::EC2::VPCEndpoint reference
# ("hostedZoneId:dnsName", the regional name first), for a Secrets Manager endpoint.
DNS_ENTRIES = [
    "Z7HUB22UULQXV:vpce-1234a5678b9012c-12345678.secretsmanager.us-east-1.vpce.amazonaws.com",
    "Z7HUB22UULQXV:vpce-1234a5678b9012c-12345678-us-east-1a.secretsmanager.us-east-1.vpce.amazonaws.com",
]


def resolve(node, attributes):
    """The value CloudFormation gives an expression of Fn::Sub (with its map), Fn::Select, Fn::Split and
    Fn::GetAtt, given the attributes {(resource, attribute): value}; anything else stays as it is."""
    if not isinstance(node, dict) or len(node) != 1:
        return node
    ((function, argument),) = node.items()
    if function == "Fn::GetAtt":
        return attributes[tuple(argument)]
    if function == "Fn::Select":
        return resolve(argument[1], attributes)[argument[0]]
    if function == "Fn::Split":
        return resolve(argument[1], attributes).split(argument[0])
    if function == "Fn::Sub":
        text, names = argument
        return re.sub(r"\$\{(\w+)\}", lambda match: resolve(names[match[1]], attributes), text)
    return node


@pytest.mark.parametrize("combo", PARAMS)
def test_no_endpoint_takes_over_the_vpcs_dns(combo, baked, monkeypatch):
    """Every interface endpoint the stack creates has private DNS off: with it on, the service's default
    name would resolve to this stack's endpoint for every workload in the VPC (and its security group and
    policy admit only this function), and a second stack of the project could not create its own in the
    same VPC. In scram mode the function calls its Secrets Manager endpoint by the endpoint's own regional
    name, and the SDK the function packages takes it from that variable."""
    template = template_of(baked, combo)
    endpoints = {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::EC2::VPCEndpoint"}
    expected = {"AtlasVpcEndpoint"} if combo["network_mode"] == "private_endpoint" else set()
    assert set(endpoints) == expected | ({"SecretsManagerEndpoint"} if combo["auth_mode"] == "scram" else set())
    for name, endpoint in endpoints.items():
        assert endpoint["Properties"]["VpcEndpointType"] == "Interface", name
        assert endpoint["Properties"]["PrivateDnsEnabled"] is False, f"{name} would take over the VPC's DNS"
    variables = the_function(template)["Environment"]["Variables"]
    if combo["auth_mode"] == "iam":
        assert not [name for name in variables if name.startswith("AWS_ENDPOINT_URL")]
        return
    url = variables["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
    if combo["vpc"] == "existing":  # the stack's endpoint when it creates one, else the VPC's by its private DNS
        condition, url, otherwise = url["Fn::If"]
        assert condition == endpoints["SecretsManagerEndpoint"]["Condition"] == "CreateSecretsManagerEndpoint"
        assert otherwise == {"Ref": "AWS::NoValue"}
    assert '{"Fn::GetAtt": ["SecretsManagerEndpoint", "DnsEntries"]}' in json.dumps(url), url
    resolved = resolve(url, {("SecretsManagerEndpoint", "DnsEntries"): DNS_ENTRIES})
    regional = DNS_ENTRIES[0].split(":", 1)[1]
    assert resolved == f"https://{regional}"
    # botocore takes a client's endpoint from the variable (the rendered tests reach their local Secrets
    # Manager through it too, with the boto3 the function packages)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", resolved)
    client = botocore.session.get_session().create_client("secretsmanager", region_name="us-east-1")
    assert client.meta.endpoint_url == resolved


@pytest.mark.parametrize("combo", PARAMS)
def test_function_egress_allows_only_what_the_mode_needs(combo, baked):
    resources = template_of(baked, combo)["Resources"]
    egress = resources["FunctionSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    atlas_rule, *others = egress
    assert atlas_rule["IpProtocol"] == "tcp"
    if combo["network_mode"] == "peering":
        assert (atlas_rule["FromPort"], atlas_rule["ToPort"]) == (27015, 27017)
        assert atlas_rule["CidrIp"] == {"Ref": "AtlasCidrBlock"}
    elif combo["network_mode"] == "private_endpoint":
        assert (atlas_rule["FromPort"], atlas_rule["ToPort"]) == (1024, 65535)
        assert atlas_rule["DestinationSecurityGroupId"] == {"Ref": "AtlasEndpointSecurityGroup"}
    else:
        assert (atlas_rule["FromPort"], atlas_rule["ToPort"]) == (27015, 27017)
        assert atlas_rule["CidrIp"] == "0.0.0.0/0"  # Atlas's public node addresses are not fixed
    if combo["auth_mode"] == "iam":
        assert others == []
    else:
        (https,) = others
        assert (https["IpProtocol"], https["FromPort"], https["ToPort"]) == ("tcp", 443, 443)
        assert "CidrIp" not in https, "Secrets Manager is reached through its endpoint's security group only"
    for name, resource in resources.items():
        if resource["Type"] == "AWS::EC2::SecurityGroup" and name != "FunctionSecurityGroup":
            rules = resource["Properties"]["SecurityGroupEgress"]
            assert [{key: rule[key] for key in NO_EGRESS} for rule in rules] == [NO_EGRESS], name
            assert "SecurityGroupIngress" not in resource["Properties"], f"{name}: ingress is a separate resource"


@pytest.mark.parametrize("combo", PARAMS)
def test_api_requires_iam_and_is_throttled(combo, baked):
    template = template_of(baked, combo)
    api = template["Resources"]["HttpApi"]["Properties"]
    assert api["Auth"] == {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}
    assert api["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
    }
    json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", api["AccessLogSettings"]["Format"]))
    events = the_function(template)["Events"].values()
    assert {(event["Properties"]["Method"], event["Properties"]["Path"]) for event in events} == ROUTES
    for event in events:
        assert event["Type"] == "HttpApi" and event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
        assert "Auth" not in event["Properties"], "no route may opt out of the default IAM authorizer"


@pytest.mark.parametrize("combo", PARAMS)
def test_the_caller_policy_allows_exactly_this_apis_routes(combo, baked):
    """An HTTP API has no resource policy, so the callers' own policies decide: the stack offers one that
    allows execute-api:Invoke on each route of _http_routes of this API's stage and nothing else, and
    outputs its ARN for attaching to the callers."""
    template = template_of(baked, combo)
    api = template["Resources"]["HttpApi"]["Properties"]
    assert "StageName" not in api, "the policy names the $default stage, the one SAM creates without StageName"
    policy = template["Resources"]["ApiCallerPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert not {"Roles", "Users", "Groups"} & set(policy["Properties"]), "the user attaches it to the callers"
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", "execute-api:Invoke")
    assert "Condition" not in statement and "NotResource" not in statement
    api_arn = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/$default/"
    expected = [  # api-id/stage/METHOD/path, a path parameter matched by *
        api_arn + route["method"] + re.sub(r"\{[^}/]+\}", "*", route["path"])
        for route in TEMPLATE_DEFAULTS["_http_routes"]
    ]
    assert [resource["Fn::Sub"] for resource in statement["Resource"]] == expected
    assert template["Outputs"]["ApiCallerPolicyArn"]["Value"] == {"Ref": "ApiCallerPolicy"}


@pytest.mark.parametrize("combo", PARAMS)
def test_logs_retained_and_function_traced(combo, baked):
    template = template_of(baked, combo)
    assert the_function(template)["Tracing"] == "Active"
    groups = {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::Logs::LogGroup"}
    assert groups["FunctionLogGroup"]["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${Function}"}
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}, name


@pytest.mark.parametrize("combo", PARAMS)
def test_outputs_and_parameters_are_what_the_atlas_steps_need(combo, baked):
    result = baked[combo_id(combo)]
    template, steps = result.template, json.dumps(result.atlas_steps["steps"])
    assert set(re.findall(r"\$\(out (\w+)\)", steps)) <= set(template["Outputs"])
    assert set(re.findall(r"\$\(param (\w+)\)", steps)) <= set(template["Parameters"])
    assert template["Outputs"]["FunctionRoleArn"]["Value"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}


# ---------------------------------------------------------------------------------------------------
# sam build of the default project, both architectures, both auth modes (for the artifact sizes)


def _runtime_path(runtime):
    """PATH with the runtime's interpreter first: sam build needs e.g. python3.13 itself (not a shim)."""
    path = os.environ.get("PATH", "")
    if runtime == f"python{sys.version_info.major}.{sys.version_info.minor}":
        path = os.pathsep.join([str(Path(sys.base_prefix) / "bin"), path])
    return path


@pytest.mark.slow
@pytest.mark.parametrize("architecture", TEMPLATE_DEFAULTS["architecture"])
@pytest.mark.parametrize("auth_mode", TEMPLATE_DEFAULTS["auth_mode"])
def test_sam_build_default_project(auth_mode, architecture, bake, tmp_path, tmp_path_factory):
    result = bake.ok(auth_mode=auth_mode, architecture=architecture)
    build_dir = tmp_path / "build"
    command = [sam(), "build", "--template-file", "template.yaml", "--build-dir", str(build_dir)]
    completed = run(
        [*command, "--cache-dir", str(tmp_path / "cache")],
        cwd=result.project_path,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": _runtime_path(result.context["python_runtime"])},
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    artifact = build_dir / "Function"
    package = result.context["package_name"]
    assert (artifact / package / "app.py").is_file(), "the handler module is missing from the artifact"
    built = load_cfn(build_dir / "template.yaml")
    assert the_function(built)["Handler"] == f"{package}.app.handler"

    extensions = list(artifact.rglob("*.so"))
    assert extensions, "pymongo's C extensions should be in the artifact"
    for extension in extensions:
        machine = int.from_bytes(extension.read_bytes()[18:20], "little")
        assert machine == ELF_MACHINE[architecture], f"{extension.name} is not built for {architecture}"

    files = [path for path in artifact.rglob("*") if path.is_file()]
    archive = tmp_path / "function.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in files:
            zipped.write(path, path.relative_to(artifact))
    sizes = {
        "auth_mode": auth_mode,
        "architecture": architecture,
        "unzipped_bytes": sum(path.stat().st_size for path in files),
        "zipped_bytes": archive.stat().st_size,
    }
    assert sizes["unzipped_bytes"] < 250 * 1024 * 1024, "over Lambda's 250 MB unzipped limit"
    assert sizes["zipped_bytes"] < 50 * 1024 * 1024, "over Lambda's 50 MB direct-upload limit"
    # SAM_BUILD_SIZES_DIR keeps the figures past pytest's temporary-directory cleanup (CI uploads it).
    report = Path(os.environ.get("SAM_BUILD_SIZES_DIR") or tmp_path_factory.getbasetemp().parent / "sam-build-sizes")
    report.mkdir(parents=True, exist_ok=True)
    (report / f"{auth_mode}-{architecture}.json").write_text(json.dumps(sizes), encoding="utf-8")
    print(f"sam build artifact {auth_mode}/{architecture}: {sizes['unzipped_bytes'] / 2**20:.1f} MiB unzipped, "
          f"{sizes['zipped_bytes'] / 2**20:.1f} MiB zipped ({report})")  # fmt: skip


def runtime_interpreter(runtime):
    """The runtime's own interpreter (python3.12 for python3.12): this one, one on PATH, or pyenv's."""
    version = runtime.removeprefix("python")
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return str(Path(sys.base_prefix) / "bin" / runtime)
    # pyenv's real binaries before PATH, whose pyenv shim may exist and still fail
    candidates = [*sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/{runtime}")), shutil.which(runtime)]
    works = [path for path in candidates if path and run([str(path), "-c", "pass"]).returncode == 0]
    found = str(works[0]) if works else None
    if found is None:
        reason = f"{runtime} is not installed here: the import check on that runtime needs its interpreter"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    return found


HOST_ARCHITECTURE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[
    platform.machine().lower()
]
OTHER_ARCHITECTURE = {"x86_64": "arm64", "arm64": "x86_64"}[HOST_ARCHITECTURE]


def build_and_check(bake, runtime, architecture):
    """`sam build`, then `make import-check` (the rendered CI's last step) on the runtime's Python."""
    interpreter = runtime_interpreter(runtime)
    result = bake.ok(python_runtime=runtime, auth_mode="scram", architecture=architecture)
    path = os.pathsep.join([str(Path(interpreter).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": path}
    built = run([sam(), "build", "--template-file", "template.yaml"], cwd=result.project_path, env=env)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    checked = run(["make", "import-check", f"RUNTIME_PYTHON={interpreter}"], cwd=result.project_path, env=env)
    return result, checked


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["python3.13", "python3.12"])
def test_built_function_starts_on_the_runtimes_own_python(runtime, bake):
    """Built for this machine's architecture: every module imports, start-up logs with the
    project's service name, and bson's and pymongo's native modules load."""
    result, checked = build_and_check(bake, runtime, HOST_ARCHITECTURE)
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output[-3000:]
    assert "Function environment initialised" in output
    assert f'"service":"{result.context["project_slug"]}"' in output.replace(" ", "")  # not service_undefined
    assert "the native modules of bson and pymongo loaded" in output
    pyproject = result.project_path / "pyproject.toml"
    version = runtime.removeprefix("python")
    assert f'requires-python = ">={version}"' in pyproject.read_text()
    assert f'target-version = "py{version.replace(".", "")}"' in pyproject.read_text()


@pytest.mark.slow
def test_a_build_for_the_other_architecture_is_refused_by_name_not_passed(bake):
    """Its native modules cannot load on this machine: pymongo would fall back to pure Python and
    the check would pass without having loaded them. It stops instead, saying why."""
    _, checked = build_and_check(bake, "python3.13", OTHER_ARCHITECTURE)
    assert checked.returncode != 0
    assert f"ERROR: import-check: the build is for {OTHER_ARCHITECTURE}, but this machine is" in checked.stderr
    assert "Function environment initialised" not in checked.stdout + checked.stderr


@pytest.mark.parametrize("combo", [combo for combo in PARAMS if combo.values[0]["network_mode"] == "peering"])
def test_every_route_table_of_the_functions_subnets_gets_the_peering_route(combo, baked):
    """A new VPC: both private route tables. An existing VPC: every entry of PrivateRouteTableIds, up
    to Lambda's 16 subnets, each route present only when the list has that entry."""
    template = template_of(baked, combo)
    routes = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::EC2::Route" and "VpcPeeringConnectionId" in resource["Properties"]
    }
    tables = [route["Properties"]["RouteTableId"] for route in routes.values()]
    if combo["vpc"] == "new":
        assert tables == [{"Ref": "PrivateRouteTableA"}, {"Ref": "PrivateRouteTableB"}]
        return
    assert template["Parameters"]["PrivateRouteTableIds"]["Type"] == "CommaDelimitedList"
    assert len(tables) == 16
    for index, table in enumerate(tables):
        select = table["Fn::Select"]
        assert select[0] == index
        assert select[1]["Fn::Split"][1]["Fn::Sub"][1] == {"Ids": {"Fn::Join": [",", {"Ref": "PrivateRouteTableIds"}]}}
        assert select[1]["Fn::Split"][1]["Fn::Sub"][0].count(",") >= 15, "every slot must exist in the split"
    conditions = template["Conditions"]
    for index, route in enumerate(routes.values()):
        if index == 0:  # the list has a first entry: the route waits for the connection only
            assert route.get("Condition") == (None if provisioned(combo) else "HasPeeringConnection")
            continue
        presence = conditions[f"HasRouteTable{index + 1}"]["Fn::Not"][0]["Fn::Equals"]
        assert presence == [route["Properties"]["RouteTableId"], ""]
        if provisioned(combo):  # the connection is the stack's: it waits through DependsOn
            assert route["Condition"] == f"HasRouteTable{index + 1}"
            continue
        assert conditions[route["Condition"]] == {
            "Fn::And": [{"Condition": "HasPeeringConnection"}, {"Condition": f"HasRouteTable{index + 1}"}]
        }


@pytest.mark.parametrize("combo", [combo for combo in PARAMS if combo.values[0]["network_mode"] == "nat_gateway"])
def test_each_zone_reaches_atlas_through_its_own_nat_gateway(combo, baked):
    """A NAT gateway lives in one zone: each private subnet routes through the NAT gateway of its own
    zone, and every NAT Elastic IP is an output that the Atlas steps put on the access list (or, with
    atlas_provisioning=cloudformation, that the stack's ProjectIpAccessList holds)."""
    result = baked[combo_id(combo)]
    resources = result.template["Resources"]
    gateways = {name: res for name, res in resources.items() if res["Type"] == "AWS::EC2::NatGateway"}
    if combo["vpc"] == "existing":
        assert gateways == {}, "with an existing VPC, the VPC's own NAT gateways are used"
        # their addresses are not the stack's to know: putting them on the access list stays a step
        assert "AtlasAccessList" not in resources
        assert "describe-nat-gateways" in json.dumps(result.atlas_steps["steps"])
        return
    zone_of = {name: res["Properties"].get("AvailabilityZone") for name, res in resources.items()}
    private_subnets = the_function(result.template)["VpcConfig"]["SubnetIds"]
    assert len(gateways) == len(private_subnets) >= 2
    for subnet in private_subnets:
        association = next(
            res["Properties"]
            for res in resources.values()
            if res["Type"] == "AWS::EC2::SubnetRouteTableAssociation" and res["Properties"]["SubnetId"] == subnet
        )
        default_route = next(
            res["Properties"]
            for res in resources.values()
            if res["Type"] == "AWS::EC2::Route"
            and res["Properties"]["RouteTableId"] == association["RouteTableId"]
            and res["Properties"]["DestinationCidrBlock"] == "0.0.0.0/0"
        )
        gateway = gateways[default_route["NatGatewayId"]["Ref"]]["Properties"]
        assert zone_of[gateway["SubnetId"]["Ref"]] == zone_of[subnet["Ref"]], f"{subnet} leaves through another zone"
    addresses = [name for name, res in resources.items() if res["Type"] == "AWS::EC2::EIP"]
    assert len(addresses) == len(gateways)
    outputs = {
        output["Value"]["Ref"]: name
        for name, output in result.template["Outputs"].items()
        if isinstance(output["Value"], dict) and "Ref" in output["Value"]
    }
    steps = json.dumps(result.atlas_steps["steps"])
    for address in addresses:
        assert address in outputs, f"{address} is not an output"
        if not provisioned(combo):
            assert f"$(out {outputs[address]})/32" in steps, f"{address} is not put on the Atlas access list"
    if provisioned(combo):
        entries = resources["AtlasAccessList"]["Properties"]["AccessList"]
        assert [entry["CIDRBlock"] for entry in entries] == [{"Fn::Sub": f"${{{address}}}/32"} for address in addresses]
        assert "/32" not in steps, "the stack puts the addresses on the access list; no step should"


# ---------------------------------------------------------------------------------------------------
# the Atlas side as MongoDB::Atlas resources (atlas_provisioning=cloudformation), wired as the types need

PROVISIONED_PARAMS = [pytest.param(combo, id=combo_id(combo)) for combo in PROVISIONED]


def atlas_resources(template):
    return {name: res for name, res in template["Resources"].items() if res["Type"].startswith(ATLAS)}


def vpc_of(combo):
    """The stack's VPC, and its CIDR block, as the template refers to them."""
    if combo["vpc"] == "new":
        return {"Ref": "Vpc"}, {"Fn::GetAtt": ["Vpc", "CidrBlock"]}
    return {"Ref": "VpcId"}, {"Ref": "VpcCidr"}


@pytest.mark.parametrize("combo", [param for param in PARAMS if not provisioned(param.values[0])])
def test_the_manual_stack_declares_nothing_of_the_atlas_side(combo, baked):
    result = baked[combo_id(combo)]
    types = {resource["Type"] for resource in result.template["Resources"].values()}
    assert not [kind for kind in types if kind.startswith(ATLAS) or kind.startswith("Custom::")], types
    assert not {"AtlasProjectId", "AtlasProfile", "AtlasClusterName"} & set(result.template["Parameters"])
    for path in ("registry-schemas", ".cfnlintrc.yaml", "tools/cfn_lint_registry.py"):
        assert not (result.project_path / path).exists(), f"{path} is for atlas_provisioning=cloudformation only"


@pytest.mark.parametrize("combo", PROVISIONED_PARAMS)
def test_every_atlas_resource_takes_the_project_and_profile_and_has_its_schema(combo, baked):
    """Each MongoDB::Atlas resource signs in with the profile (a name: its secret is cfn/atlas/profile/<name>)
    to the one project; one is never Ref'd, since Ref returns a composite identifier; registry-schemas/
    holds exactly the schema of each type the stack declares, and nothing else (cfn-lint reads every file)."""
    result = baked[combo_id(combo)]
    template = result.template
    parameters = template["Parameters"]
    assert parameters["AtlasProjectId"]["AllowedPattern"] == "^[0-9a-f]{24}$"
    assert parameters["AtlasProfile"]["Default"] == "default"
    resources = atlas_resources(template)
    assert "AtlasDatabaseUser" in resources
    for name, resource in resources.items():
        assert resource["Properties"]["Profile"] == {"Ref": "AtlasProfile"}, name
        assert resource["Properties"]["ProjectId"] == {"Ref": "AtlasProjectId"}, name
    for path, value in walk(template):
        if path and path[-1] == "Ref":
            assert value not in resources, f"Ref of {value} at {'/'.join(map(str, path))}: use !GetAtt {value}.Id"
    schemas = sorted((result.project_path / "registry-schemas").iterdir())
    assert [json.loads(schema.read_text())["typeName"] for schema in schemas] == sorted(
        {resource["Type"] for resource in resources.values()}
    )
    assert [schema.name for schema in schemas] == [
        f"{json.loads(schema.read_text())['typeName'].replace('::', '-')}.json" for schema in schemas
    ]


@pytest.mark.parametrize("combo", PROVISIONED_PARAMS)
def test_the_database_user_is_the_functions_own(combo, baked):
    """iam: the execution role's ARN, on $external. scram: a password the stack generates in the secret the
    function reads, given to Atlas by dynamic reference. Either way readWrite on the one database, on the
    one cluster."""
    template = template_of(baked, combo)
    resources = template["Resources"]
    user = resources["AtlasDatabaseUser"]["Properties"]
    # the database the function uses: the DatabaseName parameter, the answer by default
    assert user["Roles"] == [{"RoleName": "readWrite", "DatabaseName": {"Ref": "DatabaseName"}}]
    assert template["Parameters"]["DatabaseName"]["Default"] == baked[combo_id(combo)].context["database_name"]
    assert user["Scopes"] == [{"Type": "CLUSTER", "Name": {"Ref": "AtlasClusterName"}}]
    if combo["auth_mode"] == "iam":
        assert user["AWSIAMType"] == "ROLE"
        assert user["Username"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
        assert user["DatabaseName"] == "$external"
        assert "Password" not in user and "AtlasCredentialsSecret" not in resources
        return
    assert user.get("AWSIAMType", "NONE") == "NONE" and user["DatabaseName"] == "admin"
    assert user["Password"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${AtlasCredentialsSecret}:SecretString:password}}"
    }, "the password must come from the stack's own secret, by dynamic reference"
    secret = resources["AtlasCredentialsSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "password" and generated["PasswordLength"] >= 32
    assert json.loads(generated["SecretStringTemplate"]["Fn::Sub"]) == {"username": user["Username"]["Fn::Sub"]}
    assert secret["Properties"]["KmsKeyId"] == {
        "Fn::If": ["HasSecretKmsKey", {"Ref": "AtlasSecretKmsKeyArn"}, {"Ref": "AWS::NoValue"}]
    }
    assert "AtlasSecretArn" not in template["Parameters"], "the secret is the stack's: no ARN to give"
    assert template["Outputs"]["AtlasSecretArn"]["Value"] == {"Ref": "AtlasCredentialsSecret"}
    assert not [name for name, parameter in template["Parameters"].items() if parameter.get("NoEcho")]


@pytest.mark.parametrize("combo", [p for p in PROVISIONED_PARAMS if p.values[0]["network_mode"] == "private_endpoint"])
def test_the_stack_creates_the_endpoint_service_and_registers_its_endpoint(combo, baked):
    template = template_of(baked, combo)
    resources = template["Resources"]
    service = resources["AtlasPrivateEndpointService"]["Properties"]
    assert (service["CloudProvider"], service["Region"]) == ("AWS", {"Ref": "AWS::Region"})  # AWS notation
    assert resources["AtlasVpcEndpoint"]["Properties"]["ServiceName"] == {
        "Fn::GetAtt": ["AtlasPrivateEndpointService", "EndpointServiceName"]
    }
    registration = resources["AtlasPrivateEndpoint"]
    assert registration["Type"] == f"{ATLAS}PrivateEndpointAWS"
    assert registration["Properties"]["EndpointServiceId"] == {"Fn::GetAtt": ["AtlasPrivateEndpointService", "Id"]}
    assert registration["Properties"]["Id"] == {"Ref": "AtlasVpcEndpoint"}
    assert registration["Properties"]["EnforceConnectionSuccess"] is True
    assert "AtlasEndpointServiceName" not in template["Parameters"]
    assert "AtlasAccessList" not in resources, "private endpoint connections do not use the IP access list"


@pytest.mark.parametrize("combo", [p for p in PROVISIONED_PARAMS if p.values[0]["network_mode"] == "peering"])
def test_the_stack_requests_accepts_and_routes_the_peering(combo, baked):
    """The container (the stack's, or the project's own), the peering from it to the stack's VPC, the
    accepter on the AWS side allowed that one connection, and the VPC's block on the access list."""
    template = template_of(baked, combo)
    resources = template["Resources"]
    vpc, cidr = vpc_of(combo)
    container = resources["AtlasNetworkContainer"]
    assert container["Condition"] == "CreateAtlasContainer"
    assert template["Conditions"]["CreateAtlasContainer"] == {"Fn::Equals": [{"Ref": "AtlasContainerId"}, ""]}
    assert container["Properties"]["RegionName"] == {"Ref": "AtlasRegionName"}  # Atlas notation, US_EAST_1
    assert container["Properties"]["AtlasCidrBlock"] == {"Ref": "AtlasCidrBlock"}
    peering = resources["AtlasNetworkPeering"]["Properties"]
    assert peering["ContainerId"] == {
        "Fn::If": ["CreateAtlasContainer", {"Fn::GetAtt": ["AtlasNetworkContainer", "Id"]}, {"Ref": "AtlasContainerId"}]
    }
    assert peering["VpcId"] == vpc and peering["RouteTableCIDRBlock"] == cidr
    assert peering["AwsAccountId"] == {"Ref": "AWS::AccountId"}
    assert peering["AccepterRegionName"] == {"Ref": "AWS::Region"}  # AWS notation
    accepter = resources["AtlasPeeringAccepter"]
    assert accepter["Properties"]["VpcPeeringConnectionId"] == GETATT_CONNECTION
    assert accepter["Properties"]["VpcId"] == vpc
    assert accepter["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["PeeringAccepterFunction", "Arn"]}
    statements = resources["PeeringAccepterRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    accept = next(statement for statement in statements if statement["Action"] == "ec2:AcceptVpcPeeringConnection")
    connection_arn, vpc_arn = (resource["Fn::Sub"] for resource in accept["Resource"])
    assert connection_arn.endswith(":vpc-peering-connection/${AtlasNetworkPeering.ConnectionId}")
    assert vpc_arn.endswith(f":vpc/${{{vpc['Ref']}}}")
    unscoped = {"ec2:DescribeVpcPeeringConnections", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    for statement in statements:  # actions EC2 and X-Ray authorize on no resource, and no other, may use "*"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert statement["Resource"] != "*" or set(actions) <= unscoped, statement
    assert resources["AtlasAccessList"]["Properties"]["AccessList"][0]["CIDRBlock"] == cidr
    assert len(resources["AtlasAccessList"]["Properties"]["AccessList"]) == 1
    assert "PeeringConnectionId" not in template["Parameters"], "one deploy: no connection id to give"
    assert template["Outputs"]["PeeringConnectionId"]["Value"] == GETATT_CONNECTION
