"""The rendered function, for both auth modes: its own test suite (the slow runtime-level tests
included) and ruff pass on the baked project, the figures its runtime tests report hold, and the
code keeps one MongoClient, built in one place outside the handler."""

import ast
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import AUTH_MODES, ROOT, render_hook, rendered_files

MIN_TESTS = {"iam": 75, "scram": 85}
SLUG_DIR = ROOT / "{{cookiecutter.project_slug}}"
TEMPLATE_SYNTAX = re.compile(r"\{%|\{\{")
SECRETS_MANAGER = re.compile(r"secretsmanager|MONGODB_SECRET_ARN|LocalSecretsManager", re.IGNORECASE)


@pytest.fixture(scope="module", params=AUTH_MODES)
def project(request, bake):
    result = bake.ok(auth_mode=request.param)
    return request.param, result.project_path


def package_dir(project_path):
    (app,) = project_path.glob("src/*/app.py")
    return app.parent


def parse(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def mongo_client_calls(tree):
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "MongoClient"
    ]


def credentials_keys(auth_module):
    """The keys of the dict auth.credentials() returns (one return of a dict display)."""
    (function,) = [node for node in auth_module.body if getattr(node, "name", None) == "credentials"]
    (returned,) = [node.value for node in ast.walk(function) if isinstance(node, ast.Return)]
    assert isinstance(returned, ast.Dict), ast.unparse(returned)
    return {ast.literal_eval(key) for key in returned.keys}


def run(args, cwd, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MONGODB_TEST_URI")}
    return subprocess.run(
        args, cwd=cwd, env=environment | env, capture_output=True, text=True, timeout=600, check=False
    )


# One worker runs both rendered suites, one after the other: their connection bursts and failovers
# measure time against a deadline, and two at once on a 2-core machine starve each other's clients.
@pytest.mark.xdist_group("rendered-suites")
@pytest.mark.slow
def test_rendered_test_suite_passes_with_the_runtime_figures(project, tmp_path):
    mode, path = project
    junit, figures_file = tmp_path / "junit.xml", tmp_path / "figures.json"
    outcome = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={junit}"],
        path,
        TEST_FIGURES_JSON=str(figures_file),
    )
    report = outcome.stdout[-4000:] + outcome.stderr[-2000:]
    assert outcome.returncode == 0, report
    suite = ET.parse(junit).getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= MIN_TESTS[mode], counts
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts

    figures = json.loads(figures_file.read_text())
    assert figures["auth_mode"] == mode
    assert figures["invocations"] >= 100
    assert figures["module_initialisations"] == figures["clients_created"] == 1
    assert figures["connections_after_last"] == figures["connections_after_first"]
    assert figures["connections_after_last"]["live"] <= 2
    # the auth mode's credentials, read (scram: the secret) or checked (iam: one STS exchange, the
    # pool's one connection) once per environment
    assert figures.get("secret_reads") == (1 if mode == "scram" else None)
    assert figures.get("sts_exchanges") == (1 if mode == "iam" else None)
    assert figures["init_error"].startswith("AWS_REGION is not set")
    # the failures the tests cause on purpose are reported apart, each with what it shows, and
    # nothing among the measured figures reads like one
    expected = figures["expected_failures"]
    assert {"init_error", "burst_of_30_cold_starts", "cold_wave_with_3_s_monitors", "cold_wave_with_no_queue"} <= set(
        expected
    )
    measured = outcome.stdout.split(" runtime figures ", 1)[1].split(" expected failures", 1)[0]
    assert not re.search(r"\b503: |Error|init_error", measured), measured
    labelled = outcome.stdout.split(" expected failures", 1)[1]
    assert all(f"{name} ({shows}): " in labelled for name, shows in expected.items())
    for fault in figures["faults"]:
        assert fault["status"] in (200, 404, 503), fault
        assert fault["elapsed_ms"] < fault["deadline_ms"], fault
    assert {fault["status"] for fault in figures["faults"]} >= {200, 503}

    # MongoConnectionsCreated as the function printed it: a record for the invocations that opened
    # connections (the cold one, the one after the outage), none for the warm ones; ColdStart once
    metrics = figures["metrics"]
    created = metrics["connections_created"]
    assert metrics["invocations"] >= 11
    assert created["first"] >= 1 and created["warm"] == []
    assert created["after_outage"] >= 1 and created["warm_after_outage"] == []
    assert metrics["cold_start_records"] == 1


# The snap_start=yes project differs from the default one by its hooks, their tests and the dev
# requirement: its own snapshot tests (the restore simulation and its control, awslambdaric around a
# restore, container credentials) and the handler's, with ruff, not the whole suite again.
SNAPSHOT_SUITE = ["tests/test_snapshot.py", "tests/test_handler.py"]
MIN_SNAPSHOT_TESTS = 15


@pytest.mark.xdist_group("rendered-suites")
@pytest.mark.slow
@pytest.mark.parametrize("mode", AUTH_MODES)
def test_a_snap_start_projects_snapshot_tests_pass_and_it_is_ruff_clean(bake, mode, tmp_path):
    path = bake.ok(auth_mode=mode, snap_start="yes").project_path
    junit = tmp_path / "junit.xml"
    outcome = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={junit}", *SNAPSHOT_SUITE],
        path,
    )
    assert outcome.returncode == 0, outcome.stdout[-4000:] + outcome.stderr[-2000:]
    cases = ET.parse(junit).getroot().iter("testcase")
    snapshot_cases = [case for case in cases if case.get("classname", "").endswith("test_snapshot")]
    assert len(snapshot_cases) >= MIN_SNAPSHOT_TESTS
    assert not [case for case in snapshot_cases if case.find("skipped") is not None]
    # the restore simulation's figures: every write stored once, and the control's refusals
    stored_once = "restored_environments: {'environments': 3, 'writes': 15, 'acknowledged': 15, 'stored': 15}"
    assert stored_once in outcome.stdout
    assert re.search(r"restored_without_hooks \(.*\): \{'writes': 15, 'refused': [1-9]", outcome.stdout)
    for command in (["check", "."], ["format", "--check", "."]):
        linted = run([sys.executable, "-m", "ruff", *command], path)
        assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.slow
def test_rendered_project_is_ruff_clean(project):
    _, path = project
    for command in (["check", "."], ["format", "--check", "."]):
        outcome = run([sys.executable, "-m", "ruff", *command], path)
        assert outcome.returncode == 0, outcome.stdout + outcome.stderr


@pytest.mark.parametrize("host", ["cluster0-pl-0.abcde.mongodb.net", "cluster0-pl-0-lb.abcde.mongodb.net"])
def test_a_sharded_projects_start_up_and_handler_tests_pass(bake, host):
    """A sharded cluster's project starts with its deployed options and serves requests in its own
    tests: srvMaxHosts (on the -pl-0 host) stays out of the local mongodb:// URIs, where pymongo
    refuses it, and the -lb host's URI has none."""
    answers = {"atlas_cluster_type": "sharded", "atlas_tier": "M30", "atlas_cluster_host": host}
    path = bake.ok(auth_mode="scram", **answers).project_path
    tests = ["tests/test_config.py", "tests/test_handler.py", "tests/test_auth.py"]
    outcome = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *tests], path)
    assert outcome.returncode == 0, outcome.stdout[-4000:] + outcome.stderr[-2000:]


def test_one_mongo_client_built_in_one_place_outside_the_handler(project):
    mode, path = project
    package = package_dir(path)
    calls = {module.name: mongo_client_calls(parse(module)) for module in package.glob("*.py")}
    assert {name: len(found) for name, found in calls.items() if found} == {"database.py": 1, "config.py": 1}
    # config.py's checks MONGODB_URI at start-up and nothing else: told not to connect, closed at once
    config = parse(package / "config.py")
    closes = [node for node in ast.walk(config) if isinstance(node, ast.Attribute) and node.attr == "close"]
    assert [ast.unparse(node.value) for node in closes] == ["MongoClient(uri, connect=False)"]

    database = parse(package / "database.py")
    (builder,) = [node for node in database.body if isinstance(node, ast.FunctionDef) and mongo_client_calls(node)]
    assert builder.name == "_build"
    (call,) = mongo_client_calls(builder)
    assert ast.unparse(call.args[0]) == "settings.mongodb_uri"  # the URI exactly as configured
    unpacked = [ast.unparse(keyword.value) for keyword in call.keywords if keyword.arg is None]
    assert unpacked == ["auth.credentials()", "options"], "credentials come from auth.py"
    assert credentials_keys(parse(package / "auth.py")) == ({"username", "password"} if mode == "scram" else set())

    app = parse(package / "app.py")
    (handler,) = [node for node in app.body if getattr(node, "name", None) == "handler"]
    calls = [node.func for node in ast.walk(handler) if isinstance(node, ast.Call)]
    called = {getattr(func, "attr", getattr(func, "id", None)) for func in calls}
    assert not called & {"MongoClient", "client", "close", "_build"}


def test_powertools_routes_every_request_under_one_deadline(project):
    _, path = project
    package = package_dir(path)
    routes = parse(package / "routes.py")
    (resolver,) = [
        node.value for node in routes.body if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "app"
    ]
    assert ast.unparse(resolver.func) == "HttpApiResolver"
    (resolver_class,) = [
        node for node in routes.body if isinstance(node, ast.ClassDef) and node.name == "HttpApiResolver"
    ]
    assert [ast.unparse(base) for base in resolver_class.bases] == ["APIGatewayHttpResolver"]  # Powertools'
    routed = {
        (decorator.func.attr.upper(), ast.literal_eval(decorator.args[0]))
        for node in routes.body
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) in ("app.get", "app.post")
    }
    assert routed == {("POST", "/items"), ("GET", "/items/<item_id>"), ("GET", "/health")}

    timeouts = {
        module.name: [ast.unparse(node) for node in ast.walk(parse(module)) if isinstance(node, ast.Call)]
        for module in package.glob("*.py")
    }
    timeouts = {
        name: [call for call in calls if call.startswith("pymongo.timeout(")] for name, calls in timeouts.items()
    }
    # the request's deadline in one place; the others bound the early connect of a provisioned environment
    # and give an idle client's close no time for a goodbye on its dead connections
    assert {name: sorted(calls) for name, calls in timeouts.items() if calls} == {
        "routes.py": ["pymongo.timeout(budget_ms / 1000)"],
        "database.py": ["pymongo.timeout(CLOSE_WITHOUT_GOODBYE_SECONDS)", "pymongo.timeout(seconds)"],
    }, "the deadline is set in one place"
    calls = [node for module in package.glob("*.py") for node in ast.walk(parse(module)) if isinstance(node, ast.Call)]
    (use,) = [node for node in calls if ast.unparse(node.func) == "app.use"]
    assert ast.unparse(use) == "app.use(middlewares=[within_the_deadline])", "a global middleware"
    functions = [node for node in routes.body if isinstance(node, ast.FunctionDef)]
    assert [node.name for node in functions if "pymongo.timeout" in ast.unparse(node)] == ["within_the_deadline"]

    app = parse(package / "app.py")
    (handler,) = [node for node in app.body if getattr(node, "name", None) == "handler"]
    assert ast.unparse(handler.body[-1]) == "return routes.app.resolve(event, context)"


def test_client_options_are_the_lambda_ones(project):
    _, path = project
    database = parse(package_dir(path) / "database.py")
    (defaults,) = [
        node.value
        for node in database.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "URI_DEFAULTS"
    ]
    values = ast.literal_eval(defaults)
    assert values["maxIdleTimeMS"] == 60_000
    assert values["maxPoolSize"] <= 2
    assert values["serverSelectionTimeoutMS"] < 15_000
    assert values["heartbeatFrequencyMS"] < 10_000  # the driver's default, halved (a hung primary)
    # the monitors' connect timeout is template.yaml's, from the connection budget, not a default
    assert "connectTimeoutMS" not in values
    source = (package_dir(path) / "database.py").read_text(encoding="utf-8")
    for line in ('options["retryWrites"] = True', 'options["retryReads"] = True', 'options["appname"]'):
        assert line in source


# the test support of one auth mode only: iam's local STS and MONGODB-AWS server side, scram's users
# and Secrets Manager
MODE_ONLY_SUPPORT = {
    "iam": ("sts.py", "mongodb_aws.py"),
    "scram": ("scram_users.py", "secretsmanager.py"),
}


def test_each_mode_ships_its_own_files_only(project):
    mode, path = project
    for owner, names in MODE_ONLY_SUPPORT.items():
        for name in names:
            assert (path / "tests" / "support" / name).exists() == (mode == owner), (mode, name)
    requirements = (path / "src" / "requirements.txt").read_text()
    assert ("pymongo[aws]==" in requirements) == (mode == "iam")
    assert ("boto3==" in requirements) == (mode == "scram")
    moto = [line for line in (path / "requirements-dev.txt").read_text().splitlines() if line.startswith("moto[")]
    assert moto == (["moto[server,secretsmanager]==5.2.5"] if mode == "scram" else ["moto[server]==5.2.5"])


def code_files(project_path):
    """The function's and the tests' own files (no caches), relative to the project."""
    return [
        path
        for path in rendered_files(project_path)
        if path.parts[0] in ("src", "tests") and "__pycache__" not in path.parts and path.suffix in (".py", ".txt")
    ]


def test_the_function_code_has_no_template_syntax():
    """A mode's code is chosen by file (the post-gen FILES table), never by Jinja inside a file."""
    src = SLUG_DIR / "src"
    files = [path for path in src.rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    assert files
    tagged = [str(path.relative_to(src)) for path in files if TEMPLATE_SYNTAX.search(path.read_text(encoding="utf-8"))]
    assert tagged == []


def test_both_auth_modes_ship_the_same_code_but_their_own_files(bake, tmp_path):
    results = {mode: bake.ok(auth_mode=mode) for mode in AUTH_MODES}
    per_mode = set()
    for mode, result in results.items():
        (tmp_path / mode).mkdir()
        hook = render_hook("post_gen_project", dict(result.context), tmp_path / mode)
        per_mode |= {target for target in hook.FILES.values() if target is not None}
    texts = {
        mode: {
            path: (result.project_path / path).read_text(encoding="utf-8") for path in code_files(result.project_path)
        }
        for mode, result in results.items()
    }
    shared = set.intersection(*(set(files) for files in texts.values()))
    differing = {path for path in shared if len({texts[mode][path] for mode in texts}) > 1}
    assert differing <= per_mode, "only the files the FILES table places may differ by mode"
    package = next(iter(results.values())).context["package_name"]
    for module in ("database.py", "routes.py", "app.py", "config.py"):
        assert Path("src", package, module) in shared - differing
    for path in ("tests/conftest.py", "tests/test_runtime.py", "tests/support/invoke.py", "tests/support/project.py"):
        assert Path(path) in shared - differing


# What belongs to the other auth mode, in the function's and the tests' code: iam projects hold
# nothing of SCRAM or Secrets Manager, scram projects nothing of MONGODB-AWS or the local STS.
OTHER_MODE = {
    "iam": re.compile(r"scram|secretsmanager|MONGODB_SECRET_ARN|LocalSecretsManager", re.IGNORECASE),
    "scram": re.compile(r"MONGODB-AWS|mongodb_aws|LocalSTS|AssumeRole|GetCallerIdentity|sts\.py"),
}


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_a_project_carries_nothing_of_the_other_auth_mode(bake, mode):
    project = bake.ok(auth_mode=mode).project_path
    mentions = {
        str(path): sorted(set(OTHER_MODE[mode].findall((project / path).read_text(encoding="utf-8"))))
        for path in code_files(project)
    }
    assert {path: found for path, found in mentions.items() if found} == {}


def test_iam_projects_carry_nothing_of_secrets_manager(bake):
    project = bake.ok(auth_mode="iam").project_path
    mentions = [
        str(path)
        for path in rendered_files(project)
        if "__pycache__" not in path.parts
        and SECRETS_MANAGER.search((project / path).read_text(encoding="utf-8", errors="replace"))
    ]
    assert mentions == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", AUTH_MODES)
def test_local_invocations_run_as_the_project_would_be_deployed(bake, mode):
    """tools/invoke.py gives the function this project's memory size, region, function name and
    service name, as Lambda would (the function's own log lines show them), and the sample events
    are addressed to an API in the project's region."""
    result = bake.ok(project_name="Billing API", memory_size="512", aws_region="eu-west-1", auth_mode=mode)
    path = result.project_path
    for event in (path / "events").glob("*.json"):
        host = json.loads(event.read_text())["requestContext"]["domainName"]
        assert host.endswith(".execute-api.eu-west-1.amazonaws.com"), (event.name, host)
    outcome = run([sys.executable, "tools/invoke.py", "--logs", "events/health.json"], path)
    assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-2000:]
    assert "as billing-api-Function (512 MB, eu-west-1, service billing-api)" in outcome.stdout
    logs = outcome.stdout.split("--- function logs", 1)[1]
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    handled = [record for record in records if "function_memory_size" in record]
    assert handled, logs[-2000:]
    for record in handled:
        assert record["service"] == "billing-api", record
        assert record["function_name"] == "billing-api-Function", record
        assert str(record["function_memory_size"]) == "512", record
        assert record["function_arn"].startswith("arn:aws:lambda:eu-west-1:"), record
