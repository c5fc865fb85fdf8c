"""tools/invoke.py: the sample events answered by the function under awslambdaric, no Docker."""

import re
import subprocess
import sys

import pytest

from tests.support.project import ROOT

pytestmark = pytest.mark.slow

EVENTS = ["post-item", "get-item", "health", "unknown-route", "malformed-body"]


def test_invoke_answers_every_sample_event():
    paths = [f"events/{name}.json" for name in EVENTS]
    run = subprocess.run(
        [sys.executable, "tools/invoke.py", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    statuses = re.findall(r"^  (\d{3}) in \d+ ms: ", run.stdout, flags=re.MULTILINE)
    assert statuses == ["201", "200", "200", "404", "400"], run.stdout
    created = re.search(r'"id":\s*"([0-9a-f]{24})"', run.stdout)
    assert created
    assert f"GET /items/{created[1]}" in run.stdout
