"""Validation: the hook's rules unit-tested without baking, then the real CLI on bad input."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, default_answers, render_hook

# (variable, bad value, words the error must contain)
BAD_INPUTS = [
    ("memory_size", " 512", "digits only"),
    ("memory_size", "512.5", "digits only"),
    ("memory_size", "1e3", "digits only"),
    ("memory_size", "abc", "digits only"),
    ("memory_size", "", "digits only"),
    ("memory_size", "99999999999999999999", "out of range"),
    ("memory_size", "127", "from 128 to 10240"),
    ("memory_size", "10241", "from 128 to 10240"),
    ("memory_size", "-512", "digits only"),
    ("memory_size", "0512", "leading zero"),
    ("memory_size", "01024", "write 1024"),
    ("timeout_seconds", "2", "from 3 to 30"),
    ("timeout_seconds", "31", "the HTTP API gives up after 30 s"),
    ("timeout_seconds", "900", "from 3 to 30"),
    ("timeout_seconds", "015", "leading zero"),
    ("timeout_seconds", "15s", "digits only"),
    ("timeout_seconds", "", "digits only"),
    ("project_slug", "1-orders", "start with a letter"),
    ("project_slug", "Orders", "lowercase"),
    ("project_slug", "orders_service", "single hyphens"),
    ("project_slug", "orders--service", "single hyphens"),
    ("project_slug", "orders-", "single hyphens"),
    ("project_slug", "o" * 41, "at most 40"),
    ("package_name", "class", "Python identifier"),
    ("package_name", "orders-service", "Python identifier"),
    ("project_name", "", "must not be empty"),
    ("project_name", "   ", "must not be empty"),
    ("project_name", "two\nlines", "one line"),
    ("project_name", "x" * 301, "at most 300"),
    ("project_name", "!!!", "no letters or digits"),
    ("project_name", "— ✓ —", "no letters or digits"),
    ("description", "é" * 600, "1024 bytes"),
    ("aws_region", "us-east-9", "not a known AWS region"),
    ("aws_region", "US-EAST-1", "not a known AWS region"),
    ("aws_region", "cn-north-1", "not a known AWS region"),
    ("atlas_cluster_host", "mongodb+srv://cluster0.abcde.mongodb.net", "without a scheme"),
    ("atlas_cluster_host", "user:pass@cluster0.abcde.mongodb.net", "without user:password@"),
    ("atlas_cluster_host", "cluster0.abcde.mongodb.net:27017", "without a port"),
    ("atlas_cluster_host", "cluster0.abcde.mongodb.net/app", "without a port, path"),
    ("atlas_cluster_host", "localhost", "at least three labels"),
    ("atlas_cluster_host", "Cluster0.ABCDE.mongodb.net", "lowercase DNS host name"),
    ("atlas_cluster_host", "", "lowercase DNS host name"),
    ("atlas_cluster_host", "cluster0.abcde.mongodb.net", "not a private endpoint host"),
    ("atlas_cluster_host", "cluster0-pri.abcde.mongodb.net", "use the -pl- host"),
    ("database_name", "my.db", "MongoDB forbids"),
    ("database_name", "a/b", "MongoDB forbids"),
    ("database_name", "$app", "MongoDB forbids"),
    ("database_name", "with space", "MongoDB forbids"),
    ("database_name", "", "must not be empty"),
    ("database_name", "d" * 64, "shorter than 64 bytes"),
    ("database_name", "admin", "reserved"),
    ("database_name", "Local", "reserved"),
]

# combinations Atlas does not offer: (answers, variable named, words)
BAD_COMBINATIONS = [
    (
        {"network_mode": "peering", "atlas_cluster_host": "cluster0-pl-0.abcde.mongodb.net"},
        "atlas_cluster_host",
        "use the cluster's standard host",
    ),
    (
        {"network_mode": "nat_gateway", "atlas_cluster_host": "cluster0-pl-0-us-east-1.abcde.mongodb.net"},
        "atlas_cluster_host",
        "only resolves through an endpoint",
    ),
    (
        {"network_mode": "nat_gateway", "atlas_cluster_host": "cluster0-pri.abcde.mongodb.net"},
        "atlas_cluster_host",
        "resolves to the nodes' private addresses",
    ),
    (
        {"atlas_tier": "M30", "atlas_cluster_host": "cluster0-pl-0-lb.abcde.mongodb.net"},
        "atlas_cluster_host",
        "which Atlas generates for sharded clusters only",
    ),
    (
        {
            "network_mode": "peering",
            "atlas_tier": "M30",
            "atlas_cluster_type": "sharded",
            "atlas_cluster_host": "cluster0-pl-0-lb.abcde.mongodb.net",
        },
        "atlas_cluster_host",
        "only resolves through an endpoint",
    ),
    ({"network_mode": "nat_gateway", "atlas_tier": "M0", "database_name": "d" * 39}, "database_name", "38 bytes"),
    ({"atlas_cluster_type": "sharded"}, "atlas_cluster_type", "no sharded clusters on M10"),
    ({"atlas_cluster_type": "sharded", "atlas_tier": "M20"}, "atlas_cluster_type", "choose M30 or larger"),
    ({"network_mode": "nat_gateway", "atlas_tier": "Flex", "database_name": "é" * 20}, "database_name", "on Flex"),
    ({"atlas_tier": "M0", "network_mode": "peering"}, "network_mode", "no VPC peering on M0"),
    ({"atlas_tier": "Flex", "network_mode": "peering"}, "network_mode", "no VPC peering on Flex"),
    ({"atlas_tier": "M0", "network_mode": "private_endpoint"}, "network_mode", "no private endpoints on M0"),
    ({"atlas_tier": "Flex", "network_mode": "private_endpoint"}, "network_mode", "no private endpoints on Flex"),
]


def errors_for(tmp_path, **overrides):
    hook = render_hook("pre_gen_project", default_answers(**overrides), tmp_path)
    return [str(error) for error in hook.validate(hook.ANSWERS)]


def test_defaults_are_valid(pre_gen):
    assert pre_gen.validate(pre_gen.ANSWERS) == []
    assert pre_gen.main() == 0


@pytest.mark.parametrize(("field", "value", "words"), BAD_INPUTS)
def test_bad_input_is_named_and_explained(tmp_path, field, value, words):
    errors = errors_for(tmp_path, **{field: value})
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{field}: ")
    assert words in errors[0]
    assert "\n" not in errors[0]


@pytest.mark.parametrize(("answers", "field", "words"), BAD_COMBINATIONS)
def test_combinations_atlas_does_not_offer(tmp_path, answers, field, words):
    errors = errors_for(tmp_path, **answers)
    assert errors == [errors[0]] and errors[0].startswith(f"{field}: ")
    assert words in errors[0]
    if field == "network_mode":
        assert "nat_gateway" in errors[0]


@pytest.mark.parametrize(
    ("answers", "host"),
    [
        ({}, "cluster0-pl-0.abcde.mongodb.net"),
        ({"network_mode": "peering"}, "cluster0.abcde.mongodb.net"),
        ({"network_mode": "nat_gateway"}, "cluster0.abcde.mongodb.net"),
    ],
)
def test_the_default_host_follows_the_network_mode(tmp_path, answers, host):
    assert default_answers(**answers)["atlas_cluster_host"] == host
    assert errors_for(tmp_path, **answers) == []


@pytest.mark.parametrize(
    ("answers"),
    [
        {"network_mode": "peering", "atlas_cluster_host": "cluster0-pri.abcde.mongodb.net"},
        {"atlas_cluster_host": "cluster0-pl-0-us-east-1.abcde.mongodb.net"},
        {"atlas_tier": "M30", "atlas_cluster_type": "sharded", "atlas_cluster_host": "c0-pl-0-lb.abcde.mongodb.net"},
        {"atlas_tier": "M30", "atlas_cluster_type": "sharded", "atlas_cluster_host": "c0-pl-0.abcde.mongodb.net"},
        {"network_mode": "nat_gateway", "atlas_tier": "M0", "database_name": "d" * 38},
        {"network_mode": "peering", "atlas_tier": "M10", "database_name": "d" * 63},
    ],
    ids=[
        "peering-pri-host",
        "regionalized-pl-host",
        "sharded-lb-host",
        "sharded-legacy-pl-host",
        "m0-38-bytes",
        "m10-63-bytes",
    ],
)
def test_hosts_and_names_atlas_accepts(tmp_path, answers):
    assert errors_for(tmp_path, **answers) == []


@pytest.mark.parametrize("tier", ["M0", "Flex"])
def test_shared_tiers_work_behind_a_nat_gateway(tmp_path, tier):
    assert errors_for(tmp_path, atlas_tier=tier, network_mode="nat_gateway") == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_size", "128"),
        ("memory_size", "10240"),
        ("timeout_seconds", "3"),
        ("timeout_seconds", "30"),
        ("project_name", "x" * 300),
        ("project_name", 'Orders "Q" \\ : # 注文 ✓'),
        ("aws_region", "eu-central-2"),
        ("atlas_cluster_host", "cluster0-pl-0.abcde.mongodb.net"),
        ("database_name", "orders-2026_prod"),
    ],
)
def test_edge_values_are_accepted(tmp_path, field, value):
    assert errors_for(tmp_path, **{field: value}) == []


def test_every_problem_is_reported_each_on_one_line(tmp_path, capsys):
    answers = default_answers(memory_size="abc", timeout_seconds="0", database_name="admin")
    hook = render_hook("pre_gen_project", answers, tmp_path)
    assert hook.main() == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].strip() for line in lines[:3]] == ["memory_size", "timeout_seconds", "database_name"]
    assert all(line.startswith("ERROR: ") for line in lines[:3])
    assert not any(line.startswith("ERROR: ") for line in lines[3:])  # then the retry line, nothing else to fix


def cookiecutter_cli(tmp_path, *answers):
    output = tmp_path / "out"
    output.mkdir()
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(ROOT), *answers]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    return result, output


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ("memory_size=1e3", "memory_size"),
        ("memory_size=0512", "memory_size"),
        ("project_name=", "project_name"),
        ("project_name=   ", "project_name"),
        ("project_name=!!!", "project_name"),
        ("timeout_seconds=1000", "timeout_seconds"),
        ("project_slug=9lives", "project_slug"),
        ("aws_region=mars-east-1", "aws_region"),
        ("atlas_cluster_host=mongodb+srv://u:p@cluster0.abcde.mongodb.net", "atlas_cluster_host"),
        ("atlas_cluster_host=cluster0-pl-0-lb.abcde.mongodb.net", "atlas_cluster_host"),
        ("database_name=a.b", "database_name"),
    ],
)
def test_cli_rejects_bad_input_and_writes_nothing(tmp_path, answer, field):
    result, output = cookiecutter_cli(tmp_path, answer)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: {field}: "), result.stderr
    assert list(output.iterdir()) == []


def test_a_rejection_prints_a_ready_to_run_retry_line_with_the_bad_answers_marked(tmp_path):
    result, output = cookiecutter_cli(tmp_path, "project_name=Billing API", "memory_size=1e3", "aws_region=mars-1")
    lines = result.stderr.splitlines()
    errors = [index for index, line in enumerate(lines) if line.startswith("ERROR: ")]
    assert [lines[index].split(":")[1].strip() for index in errors[:2]] == ["memory_size", "aws_region"]
    assert errors[:2] == [0, 1], "the problems come first, before anything cookiecutter prints"
    assert lines[2].startswith("Nothing was generated. To try again with the same answers, fix the 2 marked")
    command, carets = lines[3], lines[4]
    assert command.strip().startswith(f"cookiecutter --no-input {ROOT} ")
    words = shlex.split(command)
    assert "project_name=Billing API" in words and "memory_size=1e3" in words and "aws_region=mars-1" in words
    assert "project_slug=billing-api" in words  # every answer given, derived ones too
    underlined = {
        match.group() for match in re.finditer(r"\S+", command) if carets[match.start() : match.start() + 1] == "^"
    }
    assert underlined == {"memory_size=1e3", "aws_region=mars-1"}
    assert list(output.iterdir()) == []
    # the line runs as printed once the marked answers are fixed
    fixed = [word.replace("1e3", "512").replace("mars-1", "eu-west-1") for word in words]
    fixed[fixed.index("--no-input") + 1 :] = ["-o", str(output), *fixed[fixed.index("--no-input") + 1 :]]
    again = subprocess.run([sys.executable, "-m", *fixed], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (output / "billing-api" / "template.yaml").exists()


def test_cli_rejects_a_combination_atlas_does_not_offer(tmp_path):
    result, output = cookiecutter_cli(tmp_path, "atlas_tier=M0", "network_mode=peering")
    assert result.returncode != 0
    assert "ERROR: network_mode: Atlas offers no VPC peering on M0" in result.stderr
    assert list(output.iterdir()) == []


def test_cli_rejects_an_unknown_choice_by_name(tmp_path):
    result, output = cookiecutter_cli(tmp_path, "network_mode=internet")
    assert result.returncode != 0
    assert "network_mode" in result.stdout + result.stderr
    assert list(output.iterdir()) == []


# ---- the connection budget left for the function ------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"_other_clients_percent": "99", "_max_pool_size": "5"}, "atlas_tier", "no connection budget is left"),
        ({"_other_clients_percent": "100"}, "_other_clients_percent", "from 0 to 99"),
        ({"_atlas_reserved_percent": "x"}, "_atlas_reserved_percent", "from 0 to 99"),
        ({"_max_pool_size": "0"}, "_max_pool_size", "positive integer"),
    ],
)
def test_no_positive_budget_fails_generation_with_a_clear_error(overrides, field, words, tmp_path):
    answers = default_answers(atlas_tier="M0", network_mode="nat_gateway", **overrides)
    hook = render_hook("pre_gen_project", answers, tmp_path)
    errors = [error for error in hook.validate(answers) if error.field == field]
    assert errors and words in str(errors[0])


def test_no_positive_budget_stops_the_real_cli(tmp_path):
    result, output = cookiecutter_cli(
        tmp_path, "atlas_tier=M0", "network_mode=nat_gateway", "_other_clients_percent=99", "_max_pool_size=5"
    )
    assert result.returncode != 0
    assert "ERROR: atlas_tier: no connection budget is left for the function on M0" in result.stderr
    assert list(output.iterdir()) == []


def test_the_replay_file_is_named_and_replays_once_fixed(tmp_path):
    """cookiecutter writes its replay file before the hook runs, rejected answers and all: the hook names it,
    replaying it unchanged fails the same way, and replaying it once fixed generates the project."""
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    env.pop("COOKIECUTTER_CONFIG", None)
    output = tmp_path / "out"
    output.mkdir()

    def cookiecutter(*args):
        command = [sys.executable, "-m", "cookiecutter", "-o", str(output), *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)

    rejected = cookiecutter("--no-input", str(ROOT), "project_name=Replayed Orders", "memory_size=1e3")
    assert rejected.returncode != 0
    (hint,) = [line for line in rejected.stderr.splitlines() if line.startswith("cookiecutter saved these answers")]
    replay = Path(re.search(r"--replay-file (\S+) ", hint).group(1))
    assert replay.is_relative_to(tmp_path / "home" / ".cookiecutter_replay")
    assert json.loads(replay.read_text())["cookiecutter"]["memory_size"] == "1e3"

    again = cookiecutter("--replay-file", str(replay), str(ROOT))
    assert again.returncode != 0 and "ERROR: memory_size: " in again.stderr
    assert list(output.iterdir()) == []

    saved = json.loads(replay.read_text())
    saved["cookiecutter"]["memory_size"] = "512"
    replay.write_text(json.dumps(saved))
    fixed = cookiecutter("--replay-file", str(replay), str(ROOT))
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert "MemorySize: 512" in (output / "replayed-orders" / "template.yaml").read_text()
