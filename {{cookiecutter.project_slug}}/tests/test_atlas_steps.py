"""tools/atlas_steps.py: this project's Atlas-side steps, read from a real CloudFormation API
(moto's server) and filled in from the stack's outputs, parameters and account; the stack is the
one samconfig.toml names for the environment (ENV); without AWS credentials, without the stack,
or with an environment samconfig.toml does not have, one line saying what is missing and a
non-zero exit."""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tools import atlas_steps

from tests.support.lambda_process import FAKE_CREDENTIALS
from tests.support.project import ROOT

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
STEPS = json.dumps(atlas_steps.TABLE["steps"])
# a value for every output and parameter this project's steps use, named after it
OUTPUTS = {name: f"{name.lower()}-value" for name in re.findall(r"\$\(out (\w+)\)", STEPS)}
PARAMETERS = {name: f"{name.lower()}-value" for name in re.findall(r"\$\(param (\w+)\)", STEPS)}
PARAMETERS["PeeringConnectionId"] = ""
AFTER = [
    (number, step)
    for number, step in enumerate(atlas_steps.TABLE["steps"], start=1)
    if step["phase"] == "after"
]
LEFT_FOR_THE_SHELL = re.compile(r"\$\((out|param) |\$ACCOUNT|\{(region|stack|database|host)\}")


def stack(outputs=OUTPUTS, **parameters) -> atlas_steps.Stack:
    return atlas_steps.Stack("demo", REGION, ACCOUNT, dict(outputs), PARAMETERS | parameters)


def test_every_step_after_the_deploy_is_printed_with_the_readmes_number():
    printed = atlas_steps.steps(stack())
    assert AFTER, "the table gives this project no step after the deploy"
    assert [line.split(". ", 1)[0] for line in printed] == [str(number) for number, _ in AFTER]


def test_outputs_parameters_and_account_are_filled_in():
    text = "\n".join(atlas_steps.steps(stack()))
    assert not LEFT_FOR_THE_SHELL.search(text), text
    for value in (OUTPUTS | PARAMETERS).values():
        assert value in text or not value


def test_a_step_whose_parameter_is_set_is_shown_done_without_commands():
    # peering's steps wait for PeeringConnectionId; any step can, so gate this project's first one
    number, first = AFTER[0]
    gated = dict(first, done_when_parameter="PeeringConnectionId")
    table = dict(atlas_steps.TABLE, steps=[*atlas_steps.TABLE["steps"]])
    table["steps"][number - 1] = gated
    pending = atlas_steps.steps(stack(), table)[0]
    done = atlas_steps.steps(stack(PeeringConnectionId="pcx-0abc"), table)[0]
    assert pending.startswith(f"{number}. ") and "\n  " in pending
    title = atlas_steps.fill(first["title"], stack())
    assert done == f"{number}. (done: PeeringConnectionId is pcx-0abc) {title}"


def test_missing_outputs_are_named_not_invented():
    text = "\n".join(atlas_steps.steps(stack(outputs={})))
    for name in OUTPUTS:
        assert f"<{name} output: not in the stack yet>" in text


@pytest.fixture(scope="module")
def cloudformation():
    """A moto server holding a stack with this project's name, outputs and parameters."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    patch = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ENDPOINT_URL_CLOUDFORMATION": f"http://{host}:{port}",
        **FAKE_CREDENTIALS,
    }.items():
        patch.setenv(name, value)
    template = {
        "Parameters": {key: {"Type": "String", "Default": v} for key, v in PARAMETERS.items()},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in OUTPUTS.items()},
    }
    client = boto3.client("cloudformation", region_name=REGION)
    stack_name = atlas_steps.TABLE["values"]["stack"]
    client.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))
    yield stack_name
    patch.undo()
    server.stop()


def test_reads_outputs_parameters_and_account_from_the_stack(cloudformation):
    read = atlas_steps.read_stack(cloudformation, REGION)
    assert read.outputs == OUTPUTS
    assert read.parameters == PARAMETERS
    assert (read.account, read.region, read.name) == (ACCOUNT, REGION, cloudformation)


def test_main_prints_this_projects_steps_from_the_deployed_stack(cloudformation, capsys):
    assert atlas_steps.main(["--region", REGION]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"Atlas-side steps for {cloudformation} ")
    assert f"{AFTER[-1][0]}. " in printed
    assert f"{OUTPUTS['ApiUrl']}health" in printed
    assert ACCOUNT in printed or "$ACCOUNT" not in STEPS


def only_aws(env: dict[str, str]) -> dict[str, str]:
    """This environment without AWS settings (no config or credentials files either), plus env."""
    base = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    base |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    return base | env


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    env = only_aws(env)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_make_atlas_steps_without_aws_credentials_says_so_in_one_line(tmp_path):
    # no credentials anywhere: no variables, files, container endpoint or instance metadata
    env = {"AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path)}
    bin_dir = Path(sys.executable).parent  # this environment's python, as make's $(BIN)/python
    finished = run(["make", "-s", "-o", "install", "atlas-steps", f"BIN={bin_dir}"], env)
    assert finished.returncode != 0
    lines = finished.stderr.strip().splitlines()
    assert lines[0].startswith("ERROR: AWS credentials: none found"), finished.stderr
    assert "aws sso login" in lines[0]
    assert [line for line in lines[1:] if not line.startswith("make: ***")] == [], finished.stderr
    assert finished.stdout == ""


def test_a_stack_that_is_not_there_is_named_in_one_line(cloudformation):
    env = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    tool = [sys.executable, "tools/atlas_steps.py", "--stack-name", "no-such-stack"]
    finished = run([*tool, "--region", REGION], env)
    assert finished.returncode == 2
    assert finished.stderr.startswith(f"ERROR: stack no-such-stack in {REGION}: ValidationError: ")
    assert len(finished.stderr.strip().splitlines()) == 1, finished.stderr


# Environments as samconfig.toml writes them: dev names its stack in the global section and takes
# the project's region; prod names it where `sam deploy` reads first, over a global one.
PROJECT = atlas_steps.TABLE["values"]["stack"]
SAMCONFIG = f"""version = 0.1

[default.global.parameters]
stack_name = "{PROJECT}"

[dev.global.parameters]
stack_name = "{PROJECT}-dev"

[prod.global.parameters]
stack_name = "not-this-one"

[prod.deploy.parameters]
stack_name = "{PROJECT}-prod"
region = "{REGION}"

[staging.build.parameters]
cached = true
"""


def config_file(tmp_path: Path, text: str = SAMCONFIG) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_environment_chooses_the_stack_and_region_as_sam_deploy_does(tmp_path):
    path = config_file(tmp_path)
    region = atlas_steps.TABLE["values"]["region"]
    found = {name: atlas_steps.environment(name, path) for name in ("default", "dev", "prod")}
    assert {name: (env.stack_name, env.region) for name, env in found.items()} == {
        "default": (PROJECT, region),
        "dev": (f"{PROJECT}-dev", region),
        "prod": (f"{PROJECT}-prod", REGION),
    }
    # an environment that names no stack gets the convention's
    assert atlas_steps.environment("staging", path).stack_name == f"{PROJECT}-staging"


def test_this_projects_samconfig_environments_are_the_ones_the_tool_knows():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    for name in (key for key, value in config.items() if isinstance(value, dict)):
        chosen = atlas_steps.environment(name, ROOT / "samconfig.toml")
        expected = PROJECT if name == "default" else f"{PROJECT}-{name}"
        assert chosen.stack_name == expected, name


@pytest.fixture(scope="module")
def environments(cloudformation):
    """The dev and prod stacks beside the default one, each with its own outputs and parameters."""
    client = boto3.client("cloudformation", region_name=REGION)
    values = {}
    for env in ("dev", "prod"):
        outputs = {name: f"{name.lower()}-{env}" for name in OUTPUTS}
        parameters = {name: f"{name.lower()}-{env}" for name in PARAMETERS} | {
            "PeeringConnectionId": ""
        }
        template = {
            "Parameters": {key: {"Type": "String", "Default": v} for key, v in parameters.items()},
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        client.create_stack(StackName=f"{PROJECT}-{env}", TemplateBody=json.dumps(template))
        values[env] = outputs | parameters
    return values


def used_values(env: str) -> set[str]:
    """The values of env's outputs and parameters that the steps after the deploy print."""
    after = json.dumps([step for _, step in AFTER])
    names = set(re.findall(r"\$\((?:out|param) (\w+)\)", after)) - {"PeeringConnectionId"}
    return {f"{name.lower()}-{env}" for name in names}


@pytest.mark.parametrize("env, other", [("prod", "dev"), ("dev", "prod")])
def test_each_environment_reads_its_own_stacks_outputs(env, other, environments, tmp_path, capsys):
    path = config_file(tmp_path)
    argv = ["--config-file", str(path), "--config-env", env, "--region", REGION]
    assert atlas_steps.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"Atlas-side steps for {PROJECT}-{env} ")
    assert f"environment {env}," in printed.splitlines()[0]
    assert f"{environments[env]['ApiUrl']}health" in printed
    assert {value for value in used_values(env) if value not in printed} == set()
    assert {value for value in used_values(other) if value in printed} == set()


def test_make_atlas_steps_env_prod_reads_the_prod_stack(environments, tmp_path):
    # the Makefile and the tool, run where samconfig.toml has dev and prod
    (tmp_path / "tools").symlink_to(ROOT / "tools")
    config_file(tmp_path)
    env = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    bin_dir = Path(sys.executable).parent
    make = ["make", "-s", "-o", "install", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path)]
    finished = run([*make, "atlas-steps", "ENV=prod", f"BIN={bin_dir}"], env)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith(f"Atlas-side steps for {PROJECT}-prod ")
    assert {value for value in used_values("prod") if value not in finished.stdout} == set()
    assert {value for value in used_values("dev") if value in finished.stdout} == set()


def test_make_atlas_steps_refuses_an_environment_samconfig_lacks_in_one_line(tmp_path):
    # no AWS at all: the environment is checked first, so nothing is asked of CloudFormation
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    known = ", ".join(key for key, value in config.items() if isinstance(value, dict))
    env = {"AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path)}
    bin_dir = Path(sys.executable).parent
    finished = run(["make", "-s", "-o", "install", "atlas-steps", "ENV=qa", f"BIN={bin_dir}"], env)
    assert finished.returncode != 0
    lines = [line for line in finished.stderr.splitlines() if not line.startswith("make: ***")]
    assert lines == [f"ERROR: environment 'qa': not in samconfig.toml, which has {known}"]
    assert finished.stdout == ""


def test_a_step_done_once_per_account_is_marked_so():
    number, first = AFTER[0]
    table = dict(atlas_steps.TABLE, steps=[*atlas_steps.TABLE["steps"]])
    table["steps"][number - 1] = dict(first, per_environment=False)
    once = atlas_steps.steps(stack(), table)[0]
    each = atlas_steps.steps(stack())[0]
    title = atlas_steps.fill(first["title"], stack())
    assert once.startswith(f"{number}. ({atlas_steps.ONCE}) {title}.")
    assert each.startswith(f"{number}. {title}.")
    assert once.split("\n")[1:] == each.split("\n")[1:], "the commands are the same"
