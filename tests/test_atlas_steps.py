"""The Atlas-side steps have one source, cookiecutter.json's _atlas_steps table: every combination's
README, post-gen message and tools/atlas_steps.py show the table's rows whose `when` holds, in order.
With atlas_provisioning=cloudformation they are what the stack cannot do itself."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import MATRIX, TEMPLATE_DEFAULTS, combo_id, render_hook

TABLE = TEMPLATE_DEFAULTS["_atlas_steps"]
SHELL_HELPERS = re.compile(r"\$\((out|param) |\$ACCOUNT")
TOKEN = re.compile(r"\{(\w+)\}")


@pytest.fixture(scope="module")
def baked(bake):
    """combination id -> baked project, all 24 combinations."""
    return {combo_id(combo): bake.ok(**combo) for combo in MATRIX}


def applies(step, answers):
    return all(answers[key] in values for key, values in step["when"].items())


def fill(text, answers):
    return TOKEN.sub(
        lambda match: answers[TABLE["tokens"][match[1]]] if match[1] in TABLE["tokens"] else match[0], text
    )


def test_the_table_is_well_formed():
    phases = list(TABLE["phases"])
    order = [phases.index(step["phase"]) for step in TABLE["steps"]]
    assert order == sorted(order), "steps must be listed phase by phase"
    for step in TABLE["steps"]:
        for key, values in step["when"].items():
            assert set(values) <= set(TEMPLATE_DEFAULTS[key]), f"{step['title']}: unknown {key} {values}"
        for text in (step["title"], step["text"], *step["commands"]):
            unknown = {token for token in TOKEN.findall(text) if token not in TABLE["tokens"]}
            assert not unknown, f"{step['title']}: unknown tokens {unknown}"
    for answer in TABLE["tokens"].values():
        assert answer in TEMPLATE_DEFAULTS, answer
    for step in TABLE["steps"]:
        assert type(step.get("per_environment")) is bool, f"{step['title']}: per_environment true or false"


# What each environment does against its own cluster and stack (the database user, for the role or the
# secret, the access list, the private endpoint, the deploy), and what one account or Atlas project does
# once for all of them (the extensions' role and activation, the API key).
PER_ENVIRONMENT = re.compile(r"atlas dbusers create|atlas accessLists create|atlas privateEndpoints|sam deploy")
ONCE = re.compile(r"aws iam create-role|activate-type|apiKeys create")


@pytest.mark.parametrize("step", TABLE["steps"], ids=lambda step: step["title"])
def test_each_step_says_whether_every_environment_does_it(step):
    commands = "\n".join(step["commands"])
    assert not (PER_ENVIRONMENT.search(commands) and ONCE.search(commands)), "one or the other"
    if PER_ENVIRONMENT.search(commands):
        assert step["per_environment"] is True
    if ONCE.search(commands):
        assert step["per_environment"] is False


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_each_combination_gets_the_rows_whose_condition_holds(combo, baked):
    result = baked[combo_id(combo)]
    expected = [step for step in TABLE["steps"] if applies(step, result.context)]
    rendered = result.atlas_steps["steps"]
    assert [step["title"] for step in rendered] == [step["title"] for step in expected]
    assert result.atlas_steps["choices"] == {key: combo[key] for key in ("auth_mode", "network_mode", "vpc")}
    phases = [step["phase"] for step in rendered]
    assert phases[-1] == "after" and "deploy" in phases


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_readme_numbers_every_step_in_order_with_its_commands(combo, baked):
    result = baked[combo_id(combo)]
    section = result.readme.split("<!-- section:atlas -->")[1].split("<!-- /section:atlas -->")[0]
    position = 0
    for number, step in enumerate(result.atlas_steps["steps"], start=1):
        heading = f"{number}. **{fill(step['title'], result.context)}.**"
        assert heading in section, heading
        marked = section.startswith(f"{heading} *(per environment)*", section.index(heading))
        assert marked == step["per_environment"], f"step {number}: the README's marker"
        assert section.index(heading) > position, f"step {number} out of order"
        position = section.index(heading)
        for command in step["commands"]:
            line = fill(command, result.context)
            assert f"   {line}\n" in section[position:], line
            assert not TOKEN.search(line), line
    assert f"{len(result.atlas_steps['steps']) + 1}. **" not in section


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_post_gen_message_lists_the_same_steps(combo, baked, tmp_path):
    result = baked[combo_id(combo)]
    hook = render_hook("post_gen_project", dict(result.context), tmp_path)
    message = hook.next_steps(hook.ANSWERS, result.atlas_steps)
    listed = re.findall(r"^  (\d+)\. (.+)$", message, flags=re.MULTILINE)
    expected = [
        (str(number), fill(step["title"], result.context)) for number, step in enumerate(result.atlas_steps["steps"], 1)
    ]
    assert listed == expected


def load_tool(project_path):
    path = project_path / "tools" / "atlas_steps.py"
    spec = importlib.util.spec_from_file_location(f"atlas_steps_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the dataclass needs its module registered
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_tool_fills_every_step_after_the_deploy_from_the_stack(combo, baked):
    result = baked[combo_id(combo)]
    tool = load_tool(result.project_path)
    outputs = {name: f"<{name}-value>" for name in result.template["Outputs"]}
    parameters = {name: f"<{name}-value>" for name in result.template["Parameters"]} | {"PeeringConnectionId": ""}
    stack = tool.Stack("demo-stack", "eu-west-1", "210987654321", outputs, parameters)
    printed = tool.steps(stack)
    after = [number for number, step in enumerate(result.atlas_steps["steps"], 1) if step["phase"] == "after"]
    assert [int(line.split(".", 1)[0]) for line in printed] == after
    text = "\n".join(printed)
    assert not SHELL_HELPERS.search(text), text
    used = set(re.findall(r"\$\((?:out|param) (\w+)\)", json.dumps(result.atlas_steps["steps"])))
    for name in used:
        assert f"<{name}-value>" in text, name
    assert "eu-west-1" in text and result.context["aws_region"] not in text.replace("eu-west-1", "")


# What the stack does itself with atlas_provisioning=cloudformation, so no step may: the database user,
# the private endpoint service and its registration, the peering and its acceptance, the access list
# (but for the NAT gateways of an existing VPC, whose addresses the stack cannot know).
DONE_BY_THE_STACK = re.compile(
    r"atlas dbusers create|atlas privateEndpoints aws (create|interfaces create)|atlas networking peering create"
    r"|accept-vpc-peering-connection|PeeringConnectionId="
)


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_the_steps_follow_who_sets_up_the_atlas_side(combo, baked):
    result = baked[combo_id(combo)]
    commands = "\n".join(command for step in result.atlas_steps["steps"] for command in step["commands"])
    if combo["atlas_provisioning"] == "manual":
        assert "activate-type" not in commands and "cfn/atlas/profile" not in commands
        return
    assert not DONE_BY_THE_STACK.search(commands), DONE_BY_THE_STACK.search(commands)
    assert ("atlas accessLists create" in commands) == (
        combo["network_mode"] == "nat_gateway" and combo["vpc"] == "existing"
    )
    assert "activate-type" in commands and "--publisher-id bb989456c78c398a858fef18f2ca1bfc1fbba082" in commands
    assert "registry-schemas/*.json" in commands, "activate the types whose schemas the project carries"
    assert "--name cfn/atlas/profile/default" in commands and '\\"PublicKey\\"' in commands
    assert [step["phase"] for step in result.atlas_steps["steps"]].count("deploy") == 1, "one deploy"


@pytest.mark.slow
def test_the_rendered_tools_own_tests_pass_for_every_set_of_steps(baked):
    """The rendered project's tests/test_atlas_steps.py (the tool against a moto CloudFormation) hold for
    each distinct set of steps the 24 combinations get, not only the default project's."""
    by_steps = {json.dumps(result.atlas_steps["steps"], sort_keys=True): result for result in baked.values()}
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MONGODB_TEST_URI")}
    for result in by_steps.values():
        outcome = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_atlas_steps.py"],
            cwd=result.project_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        choices = {key: result.context[key] for key in ("auth_mode", "network_mode", "vpc", "atlas_provisioning")}
        assert outcome.returncode == 0, f"{choices}\n{outcome.stdout[-3000:]}{outcome.stderr[-2000:]}"
