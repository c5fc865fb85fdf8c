"""The template's own code (hooks, tests, tasks.py, bench/) is ruff-clean; the rendered project is
linted with its own settings in test_rendered_function.py."""

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_template_code_is_ruff_clean(command):
    run = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--config", "pyproject.toml", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
