"""The function knows its Atlas tier's nesting limit: template.yaml sets MONGODB_MAX_DOCUMENT_DEPTH from
cookiecutter.json's _atlas_tiers table (100; 50 on M0 and Flex), and the README states the same figure."""

import pytest
from conftest import TEMPLATE_DEFAULTS, deployed_variables

TIERS = TEMPLATE_DEFAULTS["_atlas_tiers"]
# The Atlas figures (manual, limits "Nested Depth for BSON Documents"; Atlas free-shared-limitations and
# flex-limitations, "BSON Nested Object Depth"), restated here so a wrong table row fails too.
DEPTHS = {"M10": 100, "M0": 50, "Flex": 50}


@pytest.mark.parametrize("tier", DEPTHS)
def test_the_function_gets_its_tiers_document_depth(bake, tier):
    network_mode = "private_endpoint" if TIERS[tier]["private_networking"] else "nat_gateway"
    result = bake.ok(atlas_tier=tier, network_mode=network_mode)
    depth = TIERS[tier]["max_document_depth"]
    assert depth == DEPTHS[tier]
    variables = deployed_variables(result.template)
    assert variables["MONGODB_MAX_DOCUMENT_DEPTH"] == str(depth)
    assert f"more than {depth} levels of nesting (this tier's limit" in " ".join(result.readme.split())
