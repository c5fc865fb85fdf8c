"""The connection budget: one tier table (cookiecutter.json's _atlas_tiers), figures derived from it once
and used by template.yaml, the README and the pre-gen hook, each within the tier's Atlas limits."""

import ast
import re

import pytest
from conftest import MATRIX, ROOT, TEMPLATE_DEFAULTS, combo_id, default_answers, the_function

TIERS = TEMPLATE_DEFAULTS["_atlas_tiers"]
MEMBERS = TEMPLATE_DEFAULTS["_replica_set_members"]
MARGIN_MS = TEMPLATE_DEFAULTS["_deadline_margin_ms"]
OPERATIONS_PER_REQUEST = TEMPLATE_DEFAULTS["_operations_per_request"]


@pytest.fixture(scope="module")
def baked(bake):
    """combination id -> baked project, all 12 combinations."""
    return {combo_id(combo): bake.ok(**combo) for combo in MATRIX}


def expected_budget(
    tier, other_clients_percent=20, atlas_percent=10, pool=1, account=1000, unreserved=100, timeout_s=15
):
    """An independent restatement in plain Python of what cookiecutter.json derives in Jinja.

    One environment, in pymongo's poll mode, holds a monitor on every member and up to `pool` connections
    on the primary: 1 + pool on the primary, MEMBERS + pool on the whole replica set. A cold one waits
    for its connections until its deadline less the function's margin (pymongo.timeout bounds it)."""
    limits = TIERS[tier]
    share = (100 - atlas_percent) * (100 - other_clients_percent)
    environments = [limits["connections_per_node"] * share // 10000 // (1 + pool), account - unreserved]
    if limits["connections_per_cluster"]:
        environments.append(limits["connections_per_cluster"] * share // 10000 // (MEMBERS + pool))
    reserved = min(environments)
    burst = reserved
    if limits["new_connections_per_second_per_node"]:
        per_second = limits["new_connections_per_second_per_node"] * (100 - other_clients_percent) // 100
        burst = min(reserved, per_second * window_seconds(timeout_s) // (1 + pool))
    rate = 2 * reserved
    if limits["operations_per_second"]:
        rate = min(
            rate, limits["operations_per_second"] * (100 - other_clients_percent) // 100 // OPERATIONS_PER_REQUEST
        )
    return {"reserved": reserved, "burst": burst, "rate": rate}


def window_seconds(timeout_s):
    """How long a cold invocation's first request may wait for its connections."""
    return timeout_s - MARGIN_MS // 1000


def derived(answers):
    return {
        "reserved": int(answers["__reserved_concurrency"]),
        "burst": int(answers["__throttling_burst_limit"]),
        "rate": int(answers["__throttling_rate_limit"]),
    }


@pytest.mark.parametrize("tier", TEMPLATE_DEFAULTS["atlas_tier"])
def test_every_tier_gets_the_derived_budget(tier):
    answers = default_answers(atlas_tier=tier, network_mode="nat_gateway")
    assert derived(answers) == expected_budget(tier)


@pytest.mark.parametrize("timeout_s", [3, 15, 30])
def test_a_longer_timeout_lets_a_larger_cold_burst_connect(timeout_s):
    answers = default_answers(atlas_tier="M10", timeout_seconds=str(timeout_s))
    assert derived(answers) == expected_budget("M10", timeout_s=timeout_s)
    assert int(answers["__cold_connect_window_seconds"]) == timeout_s - 1


def test_the_margin_is_the_functions_own(tmp_path):
    """The budget's wait is the function's deadline less config.DEADLINE_MARGIN_MS: one figure."""
    source = (
        ROOT / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}" / "config.py"
    ).read_text()
    (assignment,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "DEADLINE_MARGIN_MS"
    ]
    assert ast.literal_eval(assignment.value) == MARGIN_MS


@pytest.mark.parametrize("tier", TEMPLATE_DEFAULTS["atlas_tier"])
def test_the_defaults_stay_within_the_tiers_limits(tier):
    """Concurrent connections fit every node (and the whole cluster); a cold burst connects at the
    tier's new-connection rate within the wait; the rate fits the tier's operations per second."""
    limits, figures = TIERS[tier], expected_budget(tier)
    pool = TEMPLATE_DEFAULTS["_max_pool_size"]
    assert figures["reserved"] * (1 + pool) <= limits["connections_per_node"]
    if limits["connections_per_cluster"]:
        assert figures["reserved"] * (MEMBERS + pool) <= limits["connections_per_cluster"]
    if limits["new_connections_per_second_per_node"]:
        seconds_to_connect = figures["burst"] * (1 + pool) / limits["new_connections_per_second_per_node"]
        assert seconds_to_connect <= window_seconds(15)
    if limits["operations_per_second"]:
        assert figures["rate"] * OPERATIONS_PER_REQUEST <= limits["operations_per_second"]
    assert 1 <= figures["burst"] <= figures["reserved"] <= 1000 - 100


def test_the_tier_labels_quote_the_table():
    labels = TEMPLATE_DEFAULTS["__prompts__"]["atlas_tier"]
    for tier, label in labels.items():
        if tier == "__prompt__":
            continue
        figures = [int(number.replace(",", "")) for number in re.findall(r"\d[\d,]*(?= connections)", label)]
        assert figures == [TIERS[tier]["connections_per_node"]], (tier, label)
        assert ("no peering or private endpoint" in label) == (not TIERS[tier]["private_networking"])


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_template_and_readme_use_the_derived_figures(combo, baked):
    result = baked[combo_id(combo)]
    template, figures = result.template, derived(result.context)
    assert figures == expected_budget(result.context["atlas_tier"])
    parameters = template["Parameters"]
    reserved = parameters["ReservedConcurrency"]
    assert (reserved["Default"], reserved["MaxValue"], reserved["MinValue"]) == (figures["reserved"],) * 2 + (1,)
    assert the_function(template)["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert parameters["ThrottlingBurstLimit"]["Default"] == figures["burst"]
    assert parameters["ThrottlingRateLimit"]["Default"] == figures["rate"]
    budget = result.readme.split("<!-- section:budget -->")[1].split("<!-- /section:budget -->")[0]
    for name in ("reserved", "burst", "rate"):
        assert f"**{figures[name]}**" in budget, name


@pytest.mark.parametrize(
    ("tier", "shown"),
    [
        ("M10", ["12 \N{MULTIPLICATION SIGN} 14 ÷ 2 = **84**", "provisioned concurrency", "M30 or larger"]),
        ("M0", ["÷ 4 connections per execution environment on the whole cluster | 90 |", "at most\n**80**"]),
        ("M30", ["does not limit new connections per second"]),
    ],
)
def test_readme_shows_the_arithmetic_of_the_chosen_tier(tier, shown, bake):
    readme = bake.ok(atlas_tier=tier, network_mode="nat_gateway").readme
    for text in shown:
        assert text in readme, text
