"""Deploying from GitHub: the rendered .github/workflows/deploy.yml runs the checks, then dev, then prod,
holds no AWS key and asks for an OIDC token only where it deploys; pipeline/template.yaml lets each
environment's job, and nothing else, assume that environment's role, which may change only that
environment's stack; the README sets up exactly what the workflow reads. (actionlint runs on both
workflows in test_render.py; cfn-lint and checkov on the pipeline stack in test_infrastructure.py.)"""

import re

import pytest
import yaml
from cfn_yaml import load as load_cfn

ENVIRONMENTS = ["dev", "prod"]
VARIANTS = [{}, {"python_runtime": "python3.12", "aws_region": "eu-west-1"}, {"atlas_provisioning": "cloudformation"}]
CREDENTIAL_INPUTS = {"aws-access-key-id", "aws-secret-access-key", "aws-session-token", "web-identity-token-file"}
ROLE_VARIABLE = "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@v\d+$")
STACK = "stack/${ProjectStackName}"


def load_workflow(path):
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True
    workflow["on"] = workflow.pop(True)
    return workflow


@pytest.fixture(scope="module", params=VARIANTS, ids=["default", "python3.12-eu-west-1", "cloudformation"])
def project(bake, request):
    return bake.ok(**request.param)


@pytest.fixture(scope="module")
def workflows(project):
    folder = project.project_path / ".github" / "workflows"
    return load_workflow(folder / "deploy.yml"), load_workflow(folder / "ci.yml")


@pytest.fixture(scope="module")
def pipeline(project):
    return load_cfn(project.project_path / "pipeline" / "template.yaml")


def steps_using(job, action):
    return [step for step in job["steps"] if step.get("uses", "").split("@")[0] == action]


def test_deploy_runs_the_checks_then_dev_then_prod(workflows):
    deploy, ci = workflows
    jobs = deploy["jobs"]
    assert set(jobs) == {"checks", *ENVIRONMENTS}
    assert jobs["checks"] == {"uses": "./.github/workflows/ci.yml"}, "the checks are ci.yml itself, called"
    assert jobs["dev"]["needs"] == "checks" and jobs["prod"]["needs"] == "dev"
    assert {name: jobs[name]["environment"] for name in ENVIRONMENTS} == {"dev": "dev", "prod": "prod"}
    # ci.yml can be called, and leaves main and tags to deploy.yml, so a push there runs the checks once
    assert "workflow_call" in ci["on"] and "pull_request" in ci["on"]
    assert ci["on"]["push"] == {"branches-ignore": ["main"]}


def test_deploy_triggers_dev_on_main_and_prod_on_a_tag_or_by_hand(workflows):
    deploy, _ = workflows
    assert deploy["on"] == {"push": {"branches": ["main"], "tags": ["v*"]}, "workflow_dispatch": None}
    dev, prod = deploy["jobs"]["dev"]["if"], deploy["jobs"]["prod"]["if"]
    assert "github.ref == 'refs/heads/main'" in dev and "startsWith(github.ref, 'refs/tags/v')" in dev
    assert "startsWith(github.ref, 'refs/tags/v')" in prod and "github.event_name == 'workflow_dispatch'" in prod
    assert "refs/heads/main'" in prod, "a manual run deploys prod from main only"


def test_only_the_deploy_jobs_may_ask_for_an_oidc_token(workflows):
    deploy, ci = workflows
    assert deploy["permissions"] == {"contents": "read"}
    assert "permissions" not in deploy["jobs"]["checks"]
    assert ci["permissions"] == {"contents": "read"} and all("permissions" not in job for job in ci["jobs"].values())
    for name in ENVIRONMENTS:
        assert deploy["jobs"][name]["permissions"] == {"id-token": "write", "contents": "read"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_deploy_job_assumes_its_environments_role_and_deploys_its_config_env(env, project, workflows):
    deploy, ci = workflows
    job = deploy["jobs"][env]
    (credentials,) = steps_using(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"] == {"role-to-assume": ROLE_VARIABLE, "aws-region": project.context["aws_region"]}
    assert not CREDENTIAL_INPUTS & set(credentials["with"])
    commands = [step["run"] for step in job["steps"] if "run" in step]
    assert commands[0] == "sam build"
    deploy_command = commands[1].split()
    assert deploy_command[:6] == [
        "sam",
        "deploy",
        "--config-env",
        env,
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
    ]
    assert '"$CLOUDFORMATION_ROLE_ARN"' in deploy_command and '"$ARTIFACTS_BUCKET"' in deploy_command
    ci_refs = {step["uses"] for job in ci["jobs"].values() for step in job["steps"] if "uses" in step}
    for step in job["steps"]:
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{step['uses']} is not pinned to a major version as ci.yml pins"
            shared = [ref for ref in ci_refs if ref.split("@")[0] == step["uses"].split("@")[0]]
            assert shared in ([], [step["uses"]]), f"{step['uses']}: ci.yml pins {shared}"


def test_the_workflows_hold_no_key_and_read_no_secret(project):
    for name in ("deploy.yml", "ci.yml"):
        text = (project.project_path / ".github" / "workflows" / name).read_text(encoding="utf-8")
        assert "secrets." not in text and "secrets:" not in text, name
        for key in CREDENTIAL_INPUTS | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}:
            assert key not in text, f"{name} mentions {key}"


def test_github_oidc_provider_is_created_or_taken(pipeline):
    assert pipeline["Parameters"]["OidcProviderArn"]["Default"] == ""
    assert pipeline["Conditions"]["CreateOidcProvider"] == {"Fn::Equals": [{"Ref": "OidcProviderArn"}, ""]}
    provider = pipeline["Resources"]["GitHubOidcProvider"]
    assert provider["Condition"] == "CreateOidcProvider"
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_role_trusts_only_its_environments_jobs_of_this_repository(env, pipeline):
    role = pipeline["Resources"][f"{env.title()}DeployRole"]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {
        "Federated": {"Fn::If": ["CreateOidcProvider", {"Ref": "GitHubOidcProvider"}, {"Ref": "OidcProviderArn"}]}
    }
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": {"Fn::Sub": f"repo:${{GitHubRepository}}:environment:{env}"},
        }
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_role_may_change_only_its_environments_stack(env, project, pipeline):
    """The deploy role: change sets on <slug>-<env> (and the Serverless transform), the execution role of
    its own environment passed to CloudFormation only, its own bucket; the other environment's names nowhere."""
    assert pipeline["Parameters"]["ProjectStackName"]["Default"] == project.context["project_slug"]
    Env, other = env.title(), next(name for name in ENVIRONMENTS if name != env)
    statements = pipeline["Resources"][f"{Env}DeployRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert all(statement["Effect"] == "Allow" for statement in statements)
    text = repr(statements)
    assert other.title() not in text and f"-{other}" not in text
    for statement in statements:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources and not any(action.endswith("*") for action in actions)
        service = {action.split(":")[0] for action in actions}
        if service == {"cloudformation"}:
            stacks = [r["Fn::Sub"] for r in resources if ":stack/" in r["Fn::Sub"]]
            transforms = [r["Fn::Sub"] for r in resources if ":transform/" in r["Fn::Sub"]]
            own_stack = f"arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:${{AWS::AccountId}}:{STACK}-{env}/*"
            assert stacks == [own_stack] or (transforms and actions == ["cloudformation:CreateChangeSet"])
        elif actions == ["iam:PassRole"]:
            assert resources == [{"Fn::GetAtt": [f"{Env}CloudFormationExecutionRole", "Arn"]}]
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
        else:
            assert service == {"s3"} and f"{Env}ArtifactsBucket" in repr(resources)
    execution = pipeline["Resources"][f"{Env}CloudFormationExecutionRole"]["Properties"]
    (trust,) = execution["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"


def test_readme_sets_up_what_the_workflow_reads(project, pipeline):
    """Each environment gets, from the pipeline stack's outputs, exactly the variables its job reads."""
    readme = project.readme
    section = readme[readme.index("<!-- section:pipeline -->") : readme.index("<!-- /section:pipeline -->")]
    assert "## Deploying from GitHub" in section
    deploy_text = (project.project_path / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    read = set(re.findall(r"\$\{\{ vars\.(\w+) \}\}", deploy_text))
    for env in ENVIRONMENTS:
        command = rf"gh variable set (\w+) --env {env} --body \"\$\(pipeline_output (\w+)\)\""
        set_here = dict(re.findall(command, section))
        assert set(set_here) == read, env
        assert all(output.startswith(env.title()) for output in set_here.values())
        assert set(set_here.values()) <= set(pipeline["Outputs"])
    slug = project.context["project_slug"]
    assert f"--template-file pipeline/template.yaml \\\n  --stack-name {slug}-pipeline" in section
    assert "required\nreviewers" in section or "required reviewers" in " ".join(section.split())
