"""Shared fixtures: bake once per module, render hooks for import, the option matrix, and the
facts several test modules check against (each defined once, here)."""

import functools
import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path

import cfnlint
import pytest
from cfn_yaml import load as load_cfn
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context

ROOT = Path(__file__).resolve().parents[1]
# the template's local extension (connection_budget.py), as cookiecutter puts the template on the path
sys.path.insert(0, str(ROOT))
TEMPLATE_DEFAULTS = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))

AUTH_MODES = TEMPLATE_DEFAULTS["auth_mode"]
NETWORK_MODES = TEMPLATE_DEFAULTS["network_mode"]
VPCS = TEMPLATE_DEFAULTS["vpc"]
PROVISIONINGS = TEMPLATE_DEFAULTS["atlas_provisioning"]
# auth_mode x network_mode x vpc x atlas_provisioning: every combination the template supports (24)
MATRIX = [
    {"auth_mode": auth, "network_mode": network, "vpc": vpc, "atlas_provisioning": provisioning}
    for auth, network, vpc, provisioning in itertools.product(AUTH_MODES, NETWORK_MODES, VPCS, PROVISIONINGS)
]


# Variables Lambda sets itself and refuses in a function's configuration: cfn-lint's own list (rule
# E3663), so the tests and the linter cannot disagree.
RESERVED_LAMBDA_VARIABLES = frozenset(
    json.loads(
        (
            Path(cfnlint.__file__).parent / "data/schemas/extensions/aws_lambda_function/environment_variable_keys.json"
        ).read_text()
    )["propertyNames"]["not"]["enum"]
)


def combo_id(combo):
    return "-".join(str(value) for value in combo.values())


class Baked:
    """A successful bake: pytest-cookies' result plus its template.yaml and README, each read once."""

    def __init__(self, result):
        self.result = result
        self.project_path = result.project_path
        self.context = result.context

    @functools.cached_property
    def template(self):
        return load_cfn(self.project_path / "template.yaml")

    @functools.cached_property
    def readme(self):
        return (self.project_path / "README.md").read_text(encoding="utf-8")

    @functools.cached_property
    def atlas_steps(self):
        return json.loads((self.project_path / "tools" / "atlas_steps.json").read_text(encoding="utf-8"))


class Baker:
    """Bakes through pytest-cookies and keeps each result for the rest of the module."""

    def __init__(self, cookies):
        self._cookies = cookies
        self._results = {}
        self._baked = {}

    def __call__(self, **extra_context):
        key = json.dumps(extra_context, sort_keys=True)
        if key not in self._results:
            self._results[key] = self._cookies.bake(extra_context=extra_context)
        return self._results[key]

    def ok(self, **extra_context):
        key = json.dumps(extra_context, sort_keys=True)
        if key not in self._baked:
            result = self(**extra_context)
            assert result.exit_code == 0, f"bake {extra_context} failed: {result.exception}"
            for name, value in extra_context.items():
                assert result.context[name] == value, f"{name} was not applied (mistyped key?)"
            self._baked[key] = Baked(result)
        return self._baked[key]


def the_function(template):
    """The properties of the template's one AWS::Serverless::Function."""
    functions = [res for res in template["Resources"].values() if res["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 1
    return functions[0]["Properties"]


def resolve(value, parameters):
    """A value as CloudFormation deploys it with these parameter values: a Ref to one of them, and
    the ${Name}s of a Sub string that are, resolved (to strings, as in an environment variable);
    anything else as it is."""
    if isinstance(value, dict) and list(value) == ["Ref"] and value["Ref"] in parameters:
        return str(parameters[value["Ref"]])
    if isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str):
        return re.sub(
            r"\$\{(\w+)\}",
            lambda match: str(parameters.get(match.group(1), match.group(0))),
            value["Fn::Sub"],
        )
    return value


def deployed_variables(template, **parameters):
    """The function's environment variables as a deploy with these parameter values sets them, the
    parameters' defaults for the others."""
    values = {name: spec["Default"] for name, spec in template["Parameters"].items() if "Default" in spec}
    values |= parameters
    return {name: resolve(value, values) for name, value in the_function(template)["Environment"]["Variables"].items()}


@pytest.fixture(scope="module")
def bake(cookies_session):
    return Baker(cookies_session)


def default_answers(**overrides):
    """The answers cookiecutter itself derives with --no-input (overrides applied the same way)."""
    context = generate_context(ROOT / "cookiecutter.json", extra_context=overrides)
    return dict(prompt_for_config(context, no_input=True))


def render_hook(name, answers, tmp_path):
    """Render hooks/<name>.py with cookiecutter's own Jinja environment and import it."""
    context = {"cookiecutter": answers}
    source = (ROOT / "hooks" / f"{name}.py").read_text(encoding="utf-8")
    rendered = create_env_with_context(context).from_string(source).render(**context)
    path = tmp_path / f"{name}.py"
    path.write_text(rendered, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"rendered_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pre_gen(tmp_path):
    return render_hook("pre_gen_project", default_answers(), tmp_path)


def rendered_files(project_path):
    """Every file cookiecutter wrote, as paths relative to the project."""
    return sorted(path.relative_to(project_path) for path in Path(project_path).rglob("*") if path.is_file())
