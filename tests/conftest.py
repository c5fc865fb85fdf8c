"""Shared fixtures: bake once per module, render hooks for import, the option matrix."""

import importlib.util
import itertools
import json
from pathlib import Path

import pytest
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DEFAULTS = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))

AUTH_MODES = TEMPLATE_DEFAULTS["auth_mode"]
NETWORK_MODES = TEMPLATE_DEFAULTS["network_mode"]
VPCS = TEMPLATE_DEFAULTS["vpc"]
# auth_mode x network_mode x vpc: every combination the template supports (12)
MATRIX = [
    {"auth_mode": auth, "network_mode": network, "vpc": vpc}
    for auth, network, vpc in itertools.product(AUTH_MODES, NETWORK_MODES, VPCS)
]


def combo_id(combo):
    return "-".join(str(value) for value in combo.values())


class Baker:
    """Bakes through pytest-cookies and keeps each result for the rest of the module."""

    def __init__(self, cookies):
        self._cookies = cookies
        self._results = {}

    def __call__(self, **extra_context):
        key = json.dumps(extra_context, sort_keys=True)
        if key not in self._results:
            self._results[key] = self._cookies.bake(extra_context=extra_context)
        return self._results[key]

    def ok(self, **extra_context):
        result = self(**extra_context)
        assert result.exit_code == 0, f"bake {extra_context} failed: {result.exception}"
        for name, value in extra_context.items():
            assert result.context[name] == value, f"{name} was not applied (mistyped key?)"
        return result


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
