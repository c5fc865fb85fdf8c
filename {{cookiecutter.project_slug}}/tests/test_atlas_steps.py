"""tools/atlas_steps.py: this project's Atlas-side steps, read from a real CloudFormation API
(moto's server) and filled in from the stack's outputs, parameters and account; without AWS
credentials, or without the stack, one line saying what is missing and a non-zero exit."""

import json
import os
import re
import subprocess
import sys
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
