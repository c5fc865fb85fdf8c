"""The connection budget: what the chosen Atlas tier lets the function do, derived once from the
tier table in cookiecutter.json (_atlas_tiers) and the answers.

    budget = derive(answers)      # answers: cookiecutter's context, values as cookiecutter gives them
    budget["reserved_concurrency"], budget["throttling_burst_limit"], ...

cookiecutter loads this module as a local extension (`_extensions` in cookiecutter.json), which
makes `connection_budget(cookiecutter)` callable in every template and `connection_budget_module()`
the folder the pre-gen hook imports it from; the template's tests import it directly. So
template.yaml, the READMEs, the rendered tests' figures and the generator's validation all read
one derivation, and none of it is arithmetic in Jinja.

What bounds what (README "Connection budget" says the same to the user, with the sources):
- Concurrent connections (every tier): each execution environment holds, in pymongo's poll mode,
  one monitoring connection to every member plus up to maxPoolSize application connections to
  the primary. The function's share of the tier's connections per node (and per cluster, where
  Atlas sets one) divided by that is how many environments may exist at once.
- Load-balanced mode (a sharded cluster behind a private endpoint, on the -lb host of Atlas's
  optimized connection string): the driver monitors nothing and holds only its pool, up to
  maxPoolSize connections through the load balancer, each to one mongos (the load-balancer
  specification, mongodb/specifications source/load-balancers/load-balancers.md, "Monitoring":
  the driver MUST NOT start a monitoring connection). So an environment costs maxPoolSize on a
  mongos, not 1 + maxPoolSize. Atlas says it limits the connections per mongos behind the
  load balancer without publishing the figure; the tier's per-node limit is budgeted.
- Cold waves (M10 and M20): Atlas admits 15 new connections a second per node there and queues
  the rest. Lambda starts as many environments at once as the function's concurrency allows, and
  each cold one needs its monitor and then its pool connection on the primary before its first
  request can answer. Reserved concurrency is what caps how many start at once, so it is sized
  for all of them to be admitted within the request's deadline, less the cold path's own work.
  No burst capacity is counted: Atlas publishes none, and other clients may have spent it.
- Requests (every tier): the HTTP API's throttle is a token bucket per route (API Gateway:
  "default per-method" and route-level limits), so the stage default is applied to each route
  separately; the totals it must keep to are split between the routes.
"""

import math
import re
from collections.abc import Mapping
from pathlib import Path

from jinja2.ext import Extension

# Lambda gives a function one full vCPU at 1,769 MB and CPU in proportion to memory below that
# (Lambda developer guide, "Configure Lambda function memory").
FULL_VCPU_MB = 1769
# The cold path's own work: one environment's first request when nothing queues (the client
# built, a monitor on each member and the pool connection over TLS, authentication, the secret
# read in scram, the write). CPU: measured on one full vCPU, on loopback, by the benchmark's
# cold-wave view (docs/benchmarks.md; rounded up from 45-63 ms for iam, whose login the local
# server checks with a local STS, and 37-52 ms for scram); it stretches as memory, and so CPU,
# shrinks. Network: what loopback hides, allowed for, not
# measured: about a dozen round trips in the region (TCP, TLS and hello for the monitor and the
# pool connection, authentication, a w:majority write) and the one call each mode makes beyond
# the cluster, Atlas's own STS call for MONGODB-AWS or the Secrets Manager read for SCRAM.
COLD_PATH_CPU_MS = {"iam": 70, "scram": 60}
COLD_PATH_NETWORK_MS = 250
# A monitor's connect timeout where Atlas does not rate-limit new connections: nothing queues,
# so it is kept short, as it also bounds each check of a primary that stops answering.
UNQUEUED_MONITOR_CONNECT_TIMEOUT_MS = 3000
# Requests of 500 ms or less: a rate of twice the reserved executions keeps them all busy.
REQUESTS_PER_EXECUTION_SECOND = 2


# The host of Atlas's optimized connection string for a sharded cluster behind a private endpoint:
# "lb" added to the private endpoint's first label, as in cluster0-pl-0-lb.oq123.mongodb-dev.net
# (mongodb/docs content/atlas/source/connect-to-database-deployment.txt, "Improve Connection
# Performance for Sharded Clusters Behind a Private Endpoint"). Atlas generates it for sharded
# clusters only and offers it "for load-balanced connections"; the string it shows carries no
# loadBalanced option, and the drivers it lists as the minimum for it are those that added
# load-balanced mode (PyMongo 3.12; content/atlas/source/driver-connection.txt): the option comes
# from the host's DNS TXT record, where the load-balancer specification lets it be (its Q&A).
# The host names Atlas shows, as the pre-gen hook checks them and template.yaml's AtlasClusterHost
# parameter constrains them at deploy time: both are built from these pieces. A private endpoint's
# host has -pl- in its first label (cluster0-pl-0.abcde.mongodb.net; regionalized:
# cluster0-pl-0-us-east-1...); -pri is the peering host for VPCs with custom DNS
# (reference/faq/connection-changes), whose private addresses a NAT gateway cannot reach.
DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
PRIVATE_ENDPOINT_TAIL = r"-pl-[0-9]+(?:-[a-z0-9-]+)?"
PEERING_PRIVATE_TAIL = r"-pri"
PRIVATE_ENDPOINT_HOST_LABEL = re.compile(PRIVATE_ENDPOINT_TAIL + "$")
PEERING_PRIVATE_HOST_LABEL = re.compile(PEERING_PRIVATE_TAIL + "$")
LOAD_BALANCED_HOST_LABEL = re.compile(PRIVATE_ENDPOINT_TAIL + "-lb$")
MAX_HOST_LENGTH = 253


def load_balanced(host: str) -> bool:
    """Whether this Atlas host is a load balancer in front of the mongos routers (the -lb host)."""
    return bool(LOAD_BALANCED_HOST_LABEL.search(host.split(".")[0]))


def host_pattern(answers: Mapping) -> str:
    """The AllowedPattern of template.yaml's AtlasClusterHost: the hosts the pre-gen hook accepts for
    this project's network mode and cluster type, as one regular expression (lookarounds that Java's
    regular expressions, CloudFormation's, and Python's share). Whether the host is Atlas's -lb host
    is fixed at generation, as the connection string's options follow it (srvMaxHosts, the
    budget): a project generated for it takes -lb hosts only, any other project none. The length
    (MAX_HOST_LENGTH) is the parameter's MaxLength."""
    mode = answers["network_mode"]
    first = rf"(?={DNS_LABEL}\.)"  # the first label is one whole DNS label; what follows says which
    if mode == "private_endpoint":
        first += rf"[a-z0-9-]*{PRIVATE_ENDPOINT_TAIL}"
        first += "-lb" if load_balanced(answers["atlas_cluster_host"]) else "(?<!-lb)"
    else:
        # no -pl- host (it resolves through an endpoint only), and no -pri host behind a NAT gateway
        first += rf"(?![a-z0-9-]*{PRIVATE_ENDPOINT_TAIL}\.)[a-z0-9-]+"
        if mode == "nat_gateway":
            first += rf"(?<!{PEERING_PRIVATE_TAIL})"
    return rf"^{first}(?:\.{DNS_LABEL}){{2,}}$"


# MongoDB forbids these in a database name (reference/limits, "Restrictions on Database Names"), and
# these names are its own; the pre-gen hook refuses the same (and says which).
DATABASE_FORBIDDEN = '/\\. "$*<>:|?\0'
RESERVED_DATABASES = ("admin", "local", "config")


def database_pattern() -> str:
    """The AllowedPattern of template.yaml's DatabaseName: no character MongoDB forbids, not one of
    its own databases (whatever the case). Its length is the parameter's MaxLength."""
    forbidden = "".join(rf"\x{ord(char):02x}" for char in DATABASE_FORBIDDEN)
    return rf"^(?!(?i:{'|'.join(RESERVED_DATABASES)})$)[^{forbidden}]+$"


def _int(answers: Mapping, name: str) -> int:
    return int(str(answers[name]))


def cold_path_ms(auth_mode: str, memory_mb: int) -> int:
    """The headroom a cold environment needs after its last connection is admitted."""
    stretch = FULL_VCPU_MB / min(memory_mb, FULL_VCPU_MB)
    return math.ceil(COLD_PATH_CPU_MS[auth_mode] * stretch) + COLD_PATH_NETWORK_MS


def derive(answers: Mapping) -> dict:
    """Every figure of the budget, from cookiecutter's answers (numbers may be strings)."""
    tier = answers["_atlas_tiers"][answers["atlas_tier"]]
    pool = _int(answers, "_max_pool_size")
    members = _int(answers, "_replica_set_members")
    share = (100 - _int(answers, "_atlas_reserved_percent")) * (100 - _int(answers, "_other_clients_percent"))
    others = _int(answers, "_other_clients_percent")
    routes = len(answers["_http_routes"])
    balanced = load_balanced(answers["atlas_cluster_host"])
    # the monitoring connections of one environment: none behind a load balancer, else one per
    # member (and so one on the primary, or on each mongos it uses)
    monitors_on_primary, monitors_on_cluster = (0, 0) if balanced else (1, members)
    per_environment_on_primary = monitors_on_primary + pool
    per_environment_on_cluster = monitors_on_cluster + pool

    node_connections = tier["connections_per_node"] * share // 10000
    environments_by_node = node_connections // per_environment_on_primary
    cluster_connections = environments_by_cluster = None
    if tier["connections_per_cluster"]:
        cluster_connections = tier["connections_per_cluster"] * share // 10000
        environments_by_cluster = cluster_connections // per_environment_on_cluster
    account_cap = _int(answers, "_account_concurrency_limit") - _int(answers, "_min_unreserved_concurrency")

    window_ms = _int(answers, "timeout_seconds") * 1000 - _int(answers, "_deadline_margin_ms")
    headroom_ms = cold_path_ms(answers["auth_mode"], _int(answers, "memory_size"))
    new_connections = environments_by_rate = None
    monitor_timeout_ms = min(UNQUEUED_MONITOR_CONNECT_TIMEOUT_MS, window_ms)
    if tier["new_connections_per_second_per_node"]:
        new_connections = tier["new_connections_per_second_per_node"] * (100 - others) // 100
        admitted_in_time = new_connections * max(0, window_ms - headroom_ms) // 1000
        environments_by_rate = admitted_in_time // per_environment_on_primary
        # a monitor queues as long as the request it serves may wait, and no longer
        monitor_timeout_ms = window_ms

    bounds = [environments_by_node, account_cap]
    bounds += [bound for bound in (environments_by_cluster, environments_by_rate) if bound is not None]
    reserved = min(bounds)

    requests_per_second = REQUESTS_PER_EXECUTION_SECOND * reserved
    operations_rate = None
    if tier["operations_per_second"]:
        operations_rate = (
            tier["operations_per_second"] * (100 - others) // 100 // _int(answers, "_operations_per_request")
        )
        requests_per_second = min(requests_per_second, operations_rate)

    return {
        "tier": answers["atlas_tier"],
        "load_balanced": balanced,
        "max_pool_size": pool,
        "replica_set_members": members,
        "connections_per_environment_on_primary": per_environment_on_primary,
        "connections_per_environment_on_cluster": per_environment_on_cluster,
        "node_connections": node_connections,
        "environments_by_node": environments_by_node,
        "cluster_connections": cluster_connections,
        "environments_by_cluster": environments_by_cluster,
        "account_cap": account_cap,
        "function_timeout_seconds": _int(answers, "timeout_seconds"),
        "cold_window_ms": window_ms,
        "cold_path_ms": headroom_ms,
        "new_connections_per_second": new_connections,
        "environments_by_connection_rate": environments_by_rate,
        "reserved_concurrency": reserved,
        "monitor_connect_timeout_ms": monitor_timeout_ms,
        "routes": routes,
        "requests_per_second": requests_per_second,
        "requests_per_second_by_operations": operations_rate,
        "throttling_burst_limit": reserved // routes,
        "throttling_rate_limit": requests_per_second // routes,
        # the pool connections of one full cold wave, the most a healthy minute opens
        "connections_alarm_per_minute": reserved * pool,
    }


# template.yaml's parameters whose defaults the tier sets, each from the budget's figure of that name;
# MaxDocumentDepth is the tier table's own (max_document_depth)
TIER_PARAMETERS = {
    "ReservedConcurrency": "reserved_concurrency",
    "ThrottlingBurstLimit": "throttling_burst_limit",
    "ThrottlingRateLimit": "throttling_rate_limit",
    "ConnectionsCreatedAlarmThreshold": "connections_alarm_per_minute",
    "MonitorConnectTimeoutMS": "monitor_connect_timeout_ms",
}


def tier_parameters(answers: Mapping) -> dict:
    """The tier-derived parameters of template.yaml, with the values their defaults have for these answers."""
    budget = derive(answers)
    values = {name: budget[figure] for name, figure in TIER_PARAMETERS.items()}
    values["MaxDocumentDepth"] = answers["_atlas_tiers"][answers["atlas_tier"]]["max_document_depth"]
    return values


def tier_overrides(answers: Mapping) -> dict:
    """Every tier of the table -> {"parameters": tier_parameters for it} with the project's other
    answers, or {"refused": why} where Atlas offers this project's network mode or cluster type on
    no such cluster, or the budget leaves the function nothing (the pre-gen hook's checks)."""
    mode, sharded = answers["network_mode"], answers["atlas_cluster_type"] == "sharded"
    table = {}
    for tier, limits in answers["_atlas_tiers"].items():
        if mode in ("peering", "private_endpoint") and not limits["private_networking"]:
            table[tier] = {"refused": f"Atlas offers no {mode.replace('_', ' ')} on {tier}"}
        elif sharded and not limits["sharding"]:
            table[tier] = {"refused": f"Atlas offers no sharded clusters on {tier}"}
        else:
            values = tier_parameters({**answers, "atlas_tier": tier})
            if min(values.values()) < 1:
                table[tier] = {"refused": f"no connection budget is left for the function on {tier}"}
            else:
                table[tier] = {"parameters": values}
    return table


def module_folder() -> str:
    """Where this module is, for the pre-gen hook (a script of its own) to import it from."""
    return str(Path(__file__).resolve().parent)


class ConnectionBudget(Extension):
    """The local extension: connection_budget(cookiecutter), connection_budget_module(), and what
    template.yaml's per-environment parameters take: atlas_host_pattern(cookiecutter),
    database_name_pattern() and tier_overrides(cookiecutter)."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["connection_budget"] = derive
        environment.globals["connection_budget_module"] = module_folder
        environment.globals["atlas_host_pattern"] = host_pattern
        environment.globals["database_name_pattern"] = database_pattern
        environment.globals["tier_overrides"] = tier_overrides
