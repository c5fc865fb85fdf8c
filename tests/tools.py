"""The command-line tools the infrastructure checks run, found where tasks.py installs them.

Each is taken from its variable (CFN_LINT, CHECKOV, SAM) or its default place; a missing tool
fails the test when CI is set, and skips it otherwise, saying where it was looked for.
"""

import os
import sys
from pathlib import Path

import pytest
from conftest import ROOT


def _tool(env_var, default, name):
    configured = os.environ.get(env_var)
    path = Path(configured) if configured else Path(default)
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    reason = f"{name} not found at {path}: set {env_var} or install it there (requirements/ lists the pins)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def cfn_lint():
    return _tool("CFN_LINT", Path(sys.executable).parent / "cfn-lint", "cfn-lint")


def checkov():
    return _tool("CHECKOV", ROOT / ".tools/checkov/bin/checkov", "checkov")


def sam():
    return _tool("SAM", ROOT / ".tools/sam/bin/sam", "the AWS SAM CLI")
