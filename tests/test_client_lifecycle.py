"""The client's lifecycle as the rendered project states it.

After a refused login the function backs off (database.py's AUTH_BACKOFF_SECONDS), and the README
gives the same figure. The function opens new connections after an idle period shorter than its
network path keeps a flow: template.yaml sets MONGODB_IDLE_REFRESH_SECONDS from the network mode's
partial, below the 350 s after which a NAT gateway, a Network Load Balancer (Atlas's private
endpoint service) and the connection tracking of current EC2 instances forget an idle TCP flow."""

import re

import pytest
from conftest import the_function

PATH_IDLE_TIMEOUT_SECONDS = 350


@pytest.mark.parametrize("network_mode", ["nat_gateway", "private_endpoint", "peering"])
def test_the_function_refreshes_its_connections_before_the_path_forgets_them(bake, network_mode):
    result = bake.ok(network_mode=network_mode)
    variables = the_function(result.template)["Environment"]["Variables"]
    seconds = int(variables["MONGODB_IDLE_REFRESH_SECONDS"])
    # the margin covers a monitor's last check, up to a heartbeat (5 s) before the last request
    assert 0 < seconds <= PATH_IDLE_TIMEOUT_SECONDS - 5
    assert f"after {seconds} s without a request" in " ".join(result.readme.split())


def test_the_readme_states_the_functions_back_off_after_a_refused_login(bake):
    result = bake.ok()
    database = next(result.project_path.glob("src/*/database.py")).read_text()
    (seconds,) = re.findall(r"^AUTH_BACKOFF_SECONDS = (\d+)\.0$", database, re.M)
    readme = " ".join(result.readme.split())
    assert f"for {seconds} s without connecting" in readme
    assert f"trying once every {seconds} s" in readme
