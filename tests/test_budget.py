"""The connection budget: one figure per tier, computed once in cookiecutter.json and used by
template.yaml, the README and the pre-gen hook."""

import pytest
from conftest import MATRIX, TEMPLATE_DEFAULTS, combo_id, default_answers, the_function


@pytest.fixture(scope="module")
def baked(bake):
    """combination id -> baked project, all 12 combinations."""
    return {combo_id(combo): bake.ok(**combo) for combo in MATRIX}


def expected_reserved_concurrency(tier, other_clients_percent=20, atlas_percent=10, pool=1):
    """An independent restatement of the budget: per-node limit, less Atlas's share and other clients',
    divided by what one execution environment holds on the primary (one monitor + the pool), capped so
    100 of the account's default 1000 stay unreserved."""
    limit = TEMPLATE_DEFAULTS["_atlas_connection_limits"][tier]
    usable = limit * (100 - atlas_percent) * (100 - other_clients_percent) // 10000
    return min(usable // (1 + pool), 1000 - 100)


@pytest.mark.parametrize("tier", TEMPLATE_DEFAULTS["atlas_tier"])
def test_budget_for_every_tier_keeps_the_account_minimum_free(tier):
    answers = default_answers(atlas_tier=tier, network_mode="nat_gateway")
    figure = int(answers["__reserved_concurrency"])
    assert figure == expected_reserved_concurrency(tier)
    assert 1 <= figure <= 1000 - 100


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_reserved_concurrency_is_the_derived_budget(combo, baked):
    result = baked[combo_id(combo)]
    template = result.template
    figure = int(result.context["__reserved_concurrency"])
    assert figure == expected_reserved_concurrency(result.context["atlas_tier"])
    parameter = template["Parameters"]["ReservedConcurrency"]
    assert (parameter["Default"], parameter["MaxValue"], parameter["MinValue"]) == (figure, figure, 1)
    assert the_function(template)["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert template["Parameters"]["ThrottlingBurstLimit"]["Default"] == figure
    assert f"**{figure}**" in result.readme, "the README's connection budget must show the same figure"
