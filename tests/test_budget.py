"""The connection budget: one tier table (cookiecutter.json's _atlas_tiers), one derivation in
Python (connection_budget.py, a cookiecutter local extension), used by template.yaml, the READMEs,
the rendered tests and the pre-gen hook, each figure within the tier's Atlas limits. The expected
figures below are worked by hand from Atlas's limits, not computed by the module under test."""

import ast
import json
import math
import re

import pytest
from conftest import MATRIX, ROOT, TEMPLATE_DEFAULTS, combo_id, default_answers, deployed_variables, the_function

import connection_budget

TIERS = TEMPLATE_DEFAULTS["_atlas_tiers"]
MARGIN_MS = TEMPLATE_DEFAULTS["_deadline_margin_ms"]
ROUTES = len(TEMPLATE_DEFAULTS["_http_routes"])

# Worked by hand, defaults unless the case says otherwise: 10% of each node's connections kept for
# Atlas, 20% of the rest for other clients (so 72% is the function's), maxPoolSize 1 (2 connections
# per environment on the primary, 4 on a 3-member replica set), an account of 1000 executions less
# the 100 Lambda keeps unreserved, Timeout 15 s less the 1 s margin (a 14,000 ms window), 3 routes.
# Cold path at 1024 MB: CPU ceil(70 x 1769/1024) = 121 ms (iam) or ceil(60 x 1769/1024) = 104 ms
# (scram), plus 250 ms of network.
HAND_WORKED = [
    (
        # 1500 x 72% = 1080 connections, / 2 = 540 environments by count; 15/s x 80% = 12/s, and
        # 12 x (14000 - 371) ms = 163 admissions in time, / 2 = 81 environments cold at once
        {"atlas_tier": "M10", "auth_mode": "iam"},
        {"node_connections": 1080, "environments_by_node": 540, "new_connections_per_second": 12,
         "cold_path_ms": 371, "environments_by_connection_rate": 81, "reserved_concurrency": 81,
         "monitor_connect_timeout_ms": 14000, "requests_per_second": 162, "throttling_burst_limit": 27,
         "throttling_rate_limit": 54, "connections_alarm_per_minute": 81},
    ),
    (
        # scram: 12 x (14000 - 354) = 163 admissions, still 81 environments
        {"atlas_tier": "M10", "auth_mode": "scram"},
        {"cold_path_ms": 354, "environments_by_connection_rate": 81, "reserved_concurrency": 81},
    ),
    (
        # 128 MB: ceil(60 x 1769/128) = 830 ms of CPU + 250 = 1080 ms; 12 x 12920 = 155, / 2 = 77
        {"atlas_tier": "M10", "auth_mode": "scram", "memory_size": "128"},
        {"cold_path_ms": 1080, "environments_by_connection_rate": 77, "reserved_concurrency": 77,
         "throttling_burst_limit": 25, "throttling_rate_limit": 51},
    ),
    (
        # a 3 s timeout: a 2000 ms window, 12 x (2000 - 371) = 19 admissions, 9 environments
        {"atlas_tier": "M10", "auth_mode": "iam", "timeout_seconds": "3"},
        {"cold_window_ms": 2000, "environments_by_connection_rate": 9, "reserved_concurrency": 9,
         "monitor_connect_timeout_ms": 2000, "throttling_burst_limit": 3, "throttling_rate_limit": 6},
    ),
    (
        # maxPoolSize 2: 3 connections per environment on the primary: 1080 / 3 = 360, 163 / 3 = 54
        {"atlas_tier": "M10", "auth_mode": "iam", "_max_pool_size": "2"},
        {"environments_by_node": 360, "environments_by_connection_rate": 54, "reserved_concurrency": 54,
         "connections_alarm_per_minute": 108},
    ),
    (
        # 3000 x 72% = 2160, / 2 = 1080; no rate limit: the account's 900 bound it
        {"atlas_tier": "M30", "auth_mode": "scram"},
        {"node_connections": 2160, "environments_by_node": 1080, "new_connections_per_second": None,
         "environments_by_connection_rate": None, "reserved_concurrency": 900,
         "monitor_connect_timeout_ms": 3000, "requests_per_second": 1800, "throttling_burst_limit": 300,
         "throttling_rate_limit": 600, "connections_alarm_per_minute": 900},
    ),
    (
        # 128,000 x 72% = 92,160, / 2 = 46,080: the account's 900 again
        {"atlas_tier": "M300", "auth_mode": "iam"},
        {"node_connections": 92160, "environments_by_node": 46080, "reserved_concurrency": 900,
         "monitor_connect_timeout_ms": 3000, "throttling_burst_limit": 300, "throttling_rate_limit": 600},
    ),
    (
        # 500 per node and per cluster: 360, / 2 = 180 by node, / 4 = 90 by cluster; 100 operations/s
        # x 80% = 80 requests/s, below 2 x 90; per route 80 / 3 = 26 and 90 / 3 = 30
        {"atlas_tier": "M0", "auth_mode": "iam", "network_mode": "nat_gateway"},
        {"node_connections": 360, "environments_by_node": 180, "cluster_connections": 360,
         "environments_by_cluster": 90, "reserved_concurrency": 90, "requests_per_second_by_operations": 80,
         "requests_per_second": 80, "throttling_burst_limit": 30, "throttling_rate_limit": 26,
         "monitor_connect_timeout_ms": 3000, "connections_alarm_per_minute": 90},
    ),
    (
        # a sharded M30 behind a private endpoint on the -lb host, 95% left to other clients: 3000 x 90%
        # x 5% = 135 connections on a mongos; no monitors behind the load balancer, so an environment
        # costs its 1 pool connection: 135 environments; 270 requests/s, per route 45 and 90
        {"atlas_tier": "M30", "auth_mode": "iam", "atlas_cluster_type": "sharded",
         "atlas_cluster_host": "cluster0-pl-0-lb.abcde.mongodb.net", "_other_clients_percent": "95"},
        {"load_balanced": True, "connections_per_environment_on_primary": 1,
         "connections_per_environment_on_cluster": 1, "node_connections": 135, "environments_by_node": 135,
         "reserved_concurrency": 135, "requests_per_second": 270, "throttling_burst_limit": 45,
         "throttling_rate_limit": 90, "connections_alarm_per_minute": 135},
    ),
    (
        # the same cluster on its -pl-0 host (Atlas's legacy string): a monitor and the pool connection
        # on each mongos used, 135 / 2 = 67 environments; 134 requests/s, per route 22 and 44
        {"atlas_tier": "M30", "auth_mode": "iam", "atlas_cluster_type": "sharded",
         "atlas_cluster_host": "cluster0-pl-0.abcde.mongodb.net", "_other_clients_percent": "95"},
        {"load_balanced": False, "connections_per_environment_on_primary": 2, "node_connections": 135,
         "environments_by_node": 67, "reserved_concurrency": 67, "throttling_burst_limit": 22,
         "throttling_rate_limit": 44, "connections_alarm_per_minute": 67},
    ),
    (
        # the -lb host with the default shares: 2160 / 1 = 2160 environments by count, the account's 900
        {"atlas_tier": "M30", "auth_mode": "scram", "atlas_cluster_type": "sharded",
         "atlas_cluster_host": "cluster0-pl-0-lb.abcde.mongodb.net"},
        {"load_balanced": True, "environments_by_node": 2160, "reserved_concurrency": 900},
    ),
    (
        # Flex: the same 90 environments; 500 operations/s x 80% = 400, above 2 x 90 = 180
        {"atlas_tier": "Flex", "auth_mode": "scram", "network_mode": "nat_gateway"},
        {"environments_by_cluster": 90, "reserved_concurrency": 90, "requests_per_second_by_operations": 400,
         "requests_per_second": 180, "throttling_burst_limit": 30, "throttling_rate_limit": 60},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("answers", "expected"), HAND_WORKED, ids=lambda value: "-".join(map(str, value.values())))
def test_the_module_matches_figures_worked_by_hand(answers, expected):
    figures = connection_budget.derive(default_answers(**answers))
    assert {name: figures[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("host", "balanced"),
    [
        ("cluster0-pl-0-lb.abcde.mongodb.net", True),  # Atlas's optimized string for a sharded cluster
        ("cluster0-pl-1-lb.abcde.mongodb.net", True),  # through a second endpoint
        ("cluster0-pl-0.abcde.mongodb.net", False),  # the legacy private endpoint string
        ("cluster0-pl-0-us-east-1.abcde.mongodb.net", False),  # regionalized private endpoint
        ("cluster0-lb.abcde.mongodb.net", False),  # a cluster named cluster0-lb on its standard host
        ("cluster0.abcde.mongodb.net", False),
    ],
)
def test_load_balanced_is_the_lb_host_of_a_private_endpoint(host, balanced):
    assert connection_budget.load_balanced(host) is balanced


def test_cookiecutter_json_holds_data_and_answers_but_no_derived_figure():
    """No budget arithmetic in Jinja: the only templated values are answers derived from answers."""
    templated = {name for name, value in TEMPLATE_DEFAULTS.items() if "{{" in json.dumps(value)}
    assert templated == {"project_slug", "package_name", "description", "atlas_cluster_host"}
    assert not [name for name in TEMPLATE_DEFAULTS if name.startswith("__") and name != "__prompts__"]
    assert TEMPLATE_DEFAULTS["_extensions"] == ["connection_budget.ConnectionBudget"]


def test_the_margin_is_the_functions_own():
    """The budget's window is the function's deadline less config.DEADLINE_MARGIN_MS: one figure."""
    source = (
        ROOT / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}" / "config.py"
    ).read_text()
    (assignment,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "DEADLINE_MARGIN_MS"
    ]
    assert ast.literal_eval(assignment.value) == MARGIN_MS


@pytest.mark.parametrize("memory", ["128", "1024", "1769", "10240"])
@pytest.mark.parametrize("timeout", ["3", "15", "30"])
@pytest.mark.parametrize("auth_mode", TEMPLATE_DEFAULTS["auth_mode"])
@pytest.mark.parametrize("tier", TEMPLATE_DEFAULTS["atlas_tier"])
def test_the_figures_stay_within_the_tiers_limits(tier, auth_mode, timeout, memory):
    """Properties, checked independently of how the module computes: the environments' connections
    fit every node (and the whole cluster); on rate-limited tiers all of them, cold at once, are
    admitted at the function's share of the rate within the window less the cold path; the routes'
    bursts together fit the reserved concurrency and their rates the tier's operations."""
    network = {} if TIERS[tier]["private_networking"] else {"network_mode": "nat_gateway"}
    sizes = {"timeout_seconds": timeout, "memory_size": memory}
    answers = default_answers(atlas_tier=tier, auth_mode=auth_mode, **sizes, **network)
    limits, b = TIERS[tier], connection_budget.derive(answers)
    reserved, pool = b["reserved_concurrency"], TEMPLATE_DEFAULTS["_max_pool_size"]
    assert 1 <= reserved <= 1000 - 100
    assert reserved * (1 + pool) <= limits["connections_per_node"] * 0.72
    if limits["connections_per_cluster"]:
        assert reserved * (3 + pool) <= limits["connections_per_cluster"] * 0.72
    window_s = int(timeout) - MARGIN_MS / 1000
    if limits["new_connections_per_second_per_node"]:
        seconds_to_admit = reserved * (1 + pool) / (limits["new_connections_per_second_per_node"] * 0.8)
        assert seconds_to_admit + b["cold_path_ms"] / 1000 <= window_s
        # the cold path at this memory is at least the measured CPU stretched to its vCPU share
        cpu_ms = connection_budget.COLD_PATH_CPU_MS[auth_mode] * 1769 / min(int(memory), 1769)
        assert b["cold_path_ms"] >= cpu_ms
        assert b["monitor_connect_timeout_ms"] == window_s * 1000  # a monitor waits its turn
    else:
        assert b["monitor_connect_timeout_ms"] == min(3000, window_s * 1000)  # short: nothing queues
    assert b["throttling_burst_limit"] >= 1 and b["throttling_burst_limit"] * ROUTES <= reserved
    assert b["throttling_rate_limit"] >= 1 and b["throttling_rate_limit"] * ROUTES <= 2 * reserved
    if limits["operations_per_second"]:
        assert b["throttling_rate_limit"] * ROUTES <= limits["operations_per_second"] * 0.8


def test_a_longer_timeout_and_more_memory_let_more_environments_start_cold_at_once():
    def reserved(**answers):
        return connection_budget.derive(default_answers(atlas_tier="M10", **answers))["reserved_concurrency"]

    assert reserved(timeout_seconds="3") < reserved(timeout_seconds="15") < reserved(timeout_seconds="30")
    assert reserved(memory_size="128") < reserved(memory_size="1024") <= reserved(memory_size="10240")
    assert reserved(memory_size="1769") == reserved(memory_size="10240")  # one vCPU and more: no gain


def test_the_tier_labels_quote_the_table():
    labels = TEMPLATE_DEFAULTS["__prompts__"]["atlas_tier"]
    for tier, label in labels.items():
        if tier == "__prompt__":
            continue
        figures = [int(number.replace(",", "")) for number in re.findall(r"\d[\d,]*(?= connections)", label)]
        assert figures == [TIERS[tier]["connections_per_node"]], (tier, label)
        assert ("no peering or private endpoint" in label) == (not TIERS[tier]["private_networking"])


@pytest.fixture(scope="module")
def baked(bake):
    """combination id -> baked project, every combination."""
    return {combo_id(combo): bake.ok(**combo) for combo in MATRIX}


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_template_readme_and_test_figures_use_the_derived_budget(combo, baked):
    result = baked[combo_id(combo)]
    template, figures = result.template, connection_budget.derive(result.context)
    parameters = template["Parameters"]
    reserved = parameters["ReservedConcurrency"]
    # the ceiling is every tier's (an environment's cluster may be of another tier, README "Environments")
    assert (reserved["Default"], reserved["MaxValue"], reserved["MinValue"]) == (
        figures["reserved_concurrency"],
        figures["account_cap"],
        1,
    )
    assert the_function(template)["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert parameters["ThrottlingBurstLimit"]["Default"] == figures["throttling_burst_limit"]
    assert parameters["ThrottlingRateLimit"]["Default"] == figures["throttling_rate_limit"]
    uri = deployed_variables(template)["MONGODB_URI"]
    assert f"&connectTimeoutMS={figures['monitor_connect_timeout_ms']}" in uri
    events = the_function(template)["Events"]
    assert [(event["Properties"]["Method"], event["Properties"]["Path"]) for event in events.values()] == [
        (route["method"], route["path"]) for route in TEMPLATE_DEFAULTS["_http_routes"]
    ]
    budget = result.readme.split("<!-- section:budget -->")[1].split("<!-- /section:budget -->")[0]
    for name in ("reserved_concurrency", "throttling_burst_limit", "throttling_rate_limit"):
        assert f"**{figures[name]}**" in budget, name
    tier_file = json.loads((result.project_path / "tests" / "support" / "atlas_tier.json").read_text())
    assert tier_file["budget"] == figures


@pytest.mark.parametrize(
    ("tier", "shown"),
    [
        (
            "M10",
            [
                "| environments that can all start cold at once and connect before their deadline (below) | 81 |",
                "| ÷ 2 connections per environment on the primary | **81** |",
                "`connectTimeoutMS=14000`",
                "M30 or larger",
            ],
        ),
        ("M0", ["÷ 4 connections per execution environment on the whole cluster | 90 |", "**80** requests per second"]),
        ("M30", ["does not limit new connections per second", "`connectTimeoutMS=3000`"]),
    ],
)
def test_readme_shows_the_arithmetic_of_the_chosen_tier(tier, shown, bake):
    readme = bake.ok(atlas_tier=tier, network_mode="nat_gateway").readme
    for text in shown:
        assert text in readme, text


def test_the_reserved_concurrency_is_what_the_rendered_cold_wave_test_starts(bake):
    """The rendered project's cold-wave test starts BUDGET["reserved_concurrency"] environments:
    the same figure as the stack's ReservedConcurrency, read from the same file."""
    result = bake.ok(atlas_tier="M20", network_mode="nat_gateway")
    tier_file = json.loads((result.project_path / "tests" / "support" / "atlas_tier.json").read_text())
    parameters = result.template["Parameters"]
    assert tier_file["budget"]["reserved_concurrency"] == parameters["ReservedConcurrency"]["Default"]
    test = (result.project_path / "tests" / "test_cold_waves.py").read_text()
    assert 'wave = a_wave(local_auth, tmp_path, BUDGET["reserved_concurrency"])' in test
    assert math.isclose(tier_file["new_connections_per_second_per_node"], 15)
