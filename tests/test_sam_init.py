"""`sam init --location` renders the template as cookiecutter does, its local extension (the
connection budget, connection_budget.py) included: AWS SAM CLI runs cookiecutter itself."""

import filecmp
import json
import subprocess
import sys

import pytest
from conftest import ROOT
from tools import sam

pytestmark = pytest.mark.slow

ANSWERS = {"project_name": "Sam Orders", "auth_mode": "scram", "atlas_tier": "M20"}


def differences(left, right):
    """Files only on one side, or different, under two folders (relative paths)."""
    found, stack = [], [filecmp.dircmp(left, right)]
    while stack:
        comparison = stack.pop()
        found += comparison.left_only + comparison.right_only + comparison.diff_files + comparison.funny_files
        stack += comparison.subdirs.values()
    return sorted(found)


def test_sam_init_renders_the_same_project_as_cookiecutter(tmp_path):
    by_sam, by_cookiecutter = tmp_path / "sam", tmp_path / "cookiecutter"
    context = json.dumps(ANSWERS)
    sam_run = subprocess.run(
        [sam(), "init", "--location", str(ROOT), "--no-input", "--output-dir", str(by_sam), "--extra-context", context],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert sam_run.returncode == 0, sam_run.stdout[-3000:] + sam_run.stderr[-3000:]
    answers = [f"{name}={value}" for name, value in ANSWERS.items()]
    cookiecutter_run = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(by_cookiecutter), str(ROOT), *answers],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert cookiecutter_run.returncode == 0, cookiecutter_run.stderr[-3000:]
    project = "sam-orders"
    assert differences(by_sam / project, by_cookiecutter / project) == []
    template = (by_sam / project / "template.yaml").read_text()
    # the budget's figures, from the local extension: the monitors' connect timeout (MonitorConnectTimeoutMS)
    assert "Default: 14000" in template
    assert "Default: 81" in template
