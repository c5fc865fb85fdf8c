"""The rendered README of every combination: its deploy tables name exactly the template's parameters
and outputs, its topology draws what the stack builds, its budget shows the derived figure, and with
atlas_provisioning=cloudformation it says how to activate exactly the MongoDB::Atlas types the stack uses."""

import re

import pytest
from conftest import MATRIX, combo_id

import connection_budget


@pytest.fixture(scope="module")
def baked(bake):
    """combination id -> baked project, all 24 combinations."""
    return {combo_id(combo): bake.ok(**combo) for combo in MATRIX}


def readme_section(readme, name):
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    assert readme.count(start) == 1 and readme.count(end) == 1, f"README section {name} markers"
    return readme[readme.index(start) + len(start) : readme.index(end)]


def table_names(text):
    """The backticked names in the first column of a Markdown table ("`A`, `B`" gives A and B)."""
    names = set()
    for cell in re.findall(r"^\| ([^|]+) \|", text, re.MULTILINE):
        names |= set(re.findall(r"`(\w+)`", cell))
    return names


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_deploy_tables_name_the_templates_parameters_and_outputs(combo, baked):
    result = baked[combo_id(combo)]
    deploy = readme_section(result.readme, "deploy")
    parameters_table, outputs_table = deploy.split("| output |", 1)
    outputs_table = outputs_table.split("###", 1)[0]
    assert table_names(parameters_table) - {"parameter"} == set(result.template["Parameters"])
    assert table_names(outputs_table) == set(result.template["Outputs"])
    assert set(re.findall(r"\$\(out (\w+)\)", result.readme)) <= set(result.template["Outputs"])
    assert set(re.findall(r"\$\(param (\w+)\)", result.readme)) <= set(result.template["Parameters"])


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_who_may_call_the_api_says_it_and_names_the_caller_policy(combo, baked):
    """The API is open to any principal of the account allowed execute-api:Invoke: the README says so, and
    how to narrow it with the stack's caller policy, read from the output that holds its ARN."""
    result = baked[combo_id(combo)]
    deploy = readme_section(result.readme, "deploy")
    assert deploy.count("### Who may call the API") == 1
    section = " ".join(deploy.split("### Who may call the API", 1)[1].split("\n### ", 1)[0].split())
    assert "any principal of this account" in section and "no resource policy" in section
    assert result.template["Outputs"]["ApiCallerPolicyArn"]["Value"] == {"Ref": "ApiCallerPolicy"}
    assert "OutputKey=='ApiCallerPolicyArn'" in section and "aws iam attach-role-policy" in section
    for narrowing in ("permissions boundary", "Service Control Policy", "another account"):
        assert narrowing in section, narrowing


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_topology_draws_what_the_stack_builds(combo, baked):
    result = baked[combo_id(combo)]
    topology = readme_section(result.readme, "topology")
    assert "```mermaid" in topology and "HTTP API" in topology and "Lambda function" in topology
    types = {resource["Type"] for resource in result.template["Resources"].values()}
    service_names = [
        str(resource["Properties"]["ServiceName"])
        for resource in result.template["Resources"].values()
        if resource["Type"] == "AWS::EC2::VPCEndpoint"
    ]
    drawn = {
        "Interface endpoint to Atlas": "AtlasVpcEndpoint" in result.template["Resources"],
        "VPC peering connection": "AtlasCidrBlock" in result.template["Parameters"],
        "NAT gateway": combo["network_mode"] == "nat_gateway",
        "Internet gateway": "AWS::EC2::InternetGateway" in types,
        "Secrets Manager interface endpoint": any("secretsmanager" in name for name in service_names),
        "AWS STS": "MONGODB-AWS" in str(result.template),
    }
    assert {label for label in drawn if label in topology} == {label for label, shown in drawn.items() if shown}


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_budget_section_shows_the_reserved_concurrency(combo, baked):
    result = baked[combo_id(combo)]
    budget = readme_section(result.readme, "budget")
    assert f"**{connection_budget.derive(result.context)['reserved_concurrency']}**" in budget


PUBLISHER = "bb989456c78c398a858fef18f2ca1bfc1fbba082"  # MongoDB's, for its public CloudFormation extensions


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_the_atlas_side_in_the_stack_is_explained_for_its_types(combo, baked):
    result = baked[combo_id(combo)]
    types = sorted(
        {res["Type"] for res in result.template["Resources"].values() if res["Type"].startswith("MongoDB::Atlas::")}
    )
    if combo["atlas_provisioning"] == "manual":
        assert types == [] and "section:provisioning" not in result.readme and PUBLISHER not in result.readme
        return
    section = readme_section(result.readme, "provisioning")
    activated = re.findall(rf"activate-type .*--type-name (\S+) \\\n\s+--publisher-id {PUBLISHER} ", section)
    assert sorted(activated) == types, "activate each type the stack declares, and no other"
    assert "--execution-role-arn" in section and "resources.cloudformation.amazonaws.com" in section
    assert "`cfn/atlas/profile/<AtlasProfile>`" in section
    assert '{"PublicKey": "<public key>", "PrivateKey": "<private key>"}' in section
    resources = {name for name, res in result.template["Resources"].items() if res["Type"] in types}
    assert resources <= set(re.findall(r"^\| `(\w+)` \| `MongoDB::Atlas::", section, re.MULTILINE))
    assert "What stays yours" in section


@pytest.mark.parametrize("mode", ["iam", "scram"])
def test_what_is_where_names_every_module_of_the_function(bake, mode):
    """The README's row for the function's package lists each of its modules, no more, no less."""
    result = bake.ok(auth_mode=mode)
    package = result.context["package_name"]
    (row,) = [line for line in result.readme.splitlines() if line.startswith(f"| `src/{package}/` |")]
    listed = set(re.findall(r"`(\w+\.py)`", row))
    modules = {path.name for path in (result.project_path / "src" / package).glob("*.py")} - {"__init__.py"}
    assert listed == modules


def test_the_prerequisites_name_the_sam_cli_for_the_make_targets_that_need_it(bake):
    readme = bake.ok().readme
    prerequisites = readme.split("## Prerequisites", 1)[1].split("\n## ", 1)[0]
    makefile = (bake.ok().project_path / "Makefile").read_text()
    needing_sam = sorted(
        target
        for target, recipe in re.findall(r"^([a-z-]+):[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.MULTILINE)
        if re.search(r"(?:^|\s)sam\s", recipe, re.MULTILINE) and target != "deploy"
    )
    assert needing_sam  # validate and build run sam
    for target in needing_sam:
        assert f"`make {target}`" in prerequisites, target
    assert "AWS SAM CLI" in prerequisites.split("For deploying: AWS credentials")[0]
