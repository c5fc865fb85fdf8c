"""Alarms and the dashboard (templates/stack/alarms.yaml), for every combination: at least three
alarms, each on a metric the stack itself produces. The AWS metrics are those of the stack's own
function and HTTP API; the function's own metric is read from its code (the name it publishes, the
variable its namespace comes from) and its dimensions from what Powertools itself emits for it, so
an alarm that would select nothing fails here. The storm threshold is derived from the connection
budget, notifications follow AlarmTopicArn, and the function uses Powertools Metrics and Tracer.
"""

import ast
import contextlib
import io
import json
import re
from types import SimpleNamespace

import pytest
from aws_lambda_powertools import Metrics
from conftest import MATRIX, TEMPLATE_DEFAULTS, combo_id, default_answers, the_function

import connection_budget

# The AWS metrics the alarms and the dashboard may read, with the dimension that names the stack's
# resource and that resource's type. Sources: Lambda's "Types of metrics for Lambda functions"
# (Errors, Throttles, ConcurrentExecutions) and API Gateway's "Monitor CloudWatch metrics for HTTP
# APIs" (4xx, 5xx, Count; ApiId), whose names differ from the REST API's 5XXError.
AWS_METRICS = {
    ("AWS/Lambda", "Errors"): ("FunctionName", "AWS::Serverless::Function"),
    ("AWS/Lambda", "Throttles"): ("FunctionName", "AWS::Serverless::Function"),
    ("AWS/Lambda", "ConcurrentExecutions"): ("FunctionName", "AWS::Serverless::Function"),
    ("AWS/ApiGateway", "5xx"): ("ApiId", "AWS::Serverless::HttpApi"),
    ("AWS/ApiGateway", "Count"): ("ApiId", "AWS::Serverless::HttpApi"),
}
# What the issue asks the alarms to watch, at the least
REQUIRED = {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("AWS/ApiGateway", "5xx")}
NOTIFY = {"Fn::If": ["NotifyAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@pytest.fixture(scope="module")
def baked(bake):
    return {combo_id(combo): bake.ok(**combo) for combo in MATRIX}


def alarms(template):
    resources = template["Resources"].items()
    return {name: res["Properties"] for name, res in resources if res["Type"] == "AWS::CloudWatch::Alarm"}


def alarm_metrics(alarm):
    """(namespace, name, {dimension: value}) of each metric an alarm reads, metric math included."""
    if "Metrics" in alarm:
        stats = [query["MetricStat"]["Metric"] for query in alarm["Metrics"] if "MetricStat" in query]
    else:
        stats = [alarm]
    return [
        (stat["Namespace"], stat["MetricName"], {d["Name"]: d["Value"] for d in stat.get("Dimensions", [])})
        for stat in stats
    ]


def is_aws(namespace):
    """An AWS service's own namespace; the function's is the stack name (a reference)."""
    return isinstance(namespace, str) and namespace.startswith("AWS/")


def resource_of_type(template, kind):
    (name,) = [name for name, res in template["Resources"].items() if res["Type"] == kind]
    return name


# ---------------------------------------------------------------------------------------------------
# what the function emits, read from its code and from Powertools


def parse(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def package_dir(project_path):
    (app,) = project_path.glob("src/*/app.py")
    return app.parent


def emitted_metric(project_path):
    """The custom metric the function publishes: its name (the constant observability.py passes
    to add_metric) and the variable its Metrics namespace is read from."""
    tree = parse(package_dir(project_path) / "observability.py")
    constants = {
        ast.unparse(node.targets[0]): node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
    }
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    (add_metric,) = [call for call in calls if ast.unparse(call.func) == "metrics.add_metric"]
    name = constants[ast.unparse(add_metric.args[0])]
    (metrics_call,) = [call for call in calls if ast.unparse(call.func) == "Metrics"]
    (namespace,) = [keyword.value for keyword in metrics_call.keywords if keyword.arg == "namespace"]
    assert ast.unparse(namespace.func) == "required" and ast.unparse(namespace.args[0]) == "os.environ"
    return name, ast.literal_eval(namespace.args[1])


def powertools_dimensions(metric, service, function_name):
    """The dimensions Powertools gives an application metric, and its ColdStart metric, for this
    service: what a CloudWatch query must select, every one of them, to find the metric."""
    metrics = Metrics(namespace="any", service=service)
    metrics.add_metric(name=metric, unit="Count", value=0)
    blob = metrics.serialize_metric_set()
    metrics.clear_metrics()
    (dimension_set,) = blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        metrics.provider.add_cold_start_metric(context=SimpleNamespace(function_name=function_name))
    cold = json.loads(printed.getvalue())
    (cold_set,) = cold["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    return {
        metric: {name: blob[name] for name in dimension_set},
        "ColdStart": {name: cold[name] for name in cold_set},
    }


def test_powertools_gives_an_application_metric_the_service_dimension_only():
    """The premise of the storm alarm's one dimension, asked of Powertools itself."""
    dimensions = powertools_dimensions("M", "svc", "fn")
    assert dimensions == {"M": {"service": "svc"}, "ColdStart": {"function_name": "fn", "service": "svc"}}


# ---------------------------------------------------------------------------------------------------
# per combination


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_at_least_three_alarms_each_with_missing_data_and_notifications_chosen(combo, baked):
    template = baked[combo_id(combo)].template
    found = alarms(template)
    assert len(found) >= 3, sorted(found)
    for name, alarm in found.items():
        assert alarm["TreatMissingData"] in ("breaching", "notBreaching", "ignore", "missing"), name
        assert alarm["AlarmActions"] == alarm["OKActions"] == NOTIFY, name
        assert len(alarm["AlarmDescription"].split()) >= 15, f"{name}: say what it means and what to do"
    parameter = template["Parameters"]["AlarmTopicArn"]
    assert parameter["Default"] == "" and re.fullmatch(parameter["AllowedPattern"], "")
    assert re.fullmatch(parameter["AllowedPattern"], "arn:aws:sns:us-east-1:123456789012:alarms")
    assert template["Conditions"]["NotifyAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_every_aws_metric_alarmed_is_one_of_the_stacks_own_resources(combo, baked):
    template = baked[combo_id(combo)].template
    read = set()
    for name, alarm in alarms(template).items():
        for namespace, metric, dimensions in alarm_metrics(alarm):
            if not is_aws(namespace):
                continue
            assert (namespace, metric) in AWS_METRICS, f"{name}: {namespace} {metric} is not a metric we know"
            dimension, kind = AWS_METRICS[namespace, metric]
            assert dimensions == {dimension: {"Ref": resource_of_type(template, kind)}}, name
            read.add((namespace, metric))
    assert read >= REQUIRED


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_the_storm_alarm_selects_exactly_what_the_function_emits(combo, baked):
    result = baked[combo_id(combo)]
    template = result.template
    metric, namespace_variable = emitted_metric(result.project_path)
    variables = the_function(template)["Environment"]["Variables"]
    service = variables["POWERTOOLS_SERVICE_NAME"]
    expected = powertools_dimensions(metric, service, "unused")[metric]
    custom = [
        (name, found)
        for name, alarm in alarms(template).items()
        for found in alarm_metrics(alarm)
        if not is_aws(found[0])
    ]
    assert [found for _, found in custom] == [(variables[namespace_variable], metric, expected)]
    (name, _), *_ = custom
    storm = alarms(template)[name]
    assert storm["Threshold"] == {"Ref": "ConnectionsCreatedAlarmThreshold"}
    assert (storm["Statistic"], storm["Period"]) == ("Sum", 60), "the threshold is per minute"


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_the_dashboard_shows_only_metrics_the_stack_produces(combo, baked):
    result = baked[combo_id(combo)]
    template = result.template
    (body,) = [
        res["Properties"]["DashboardBody"]["Fn::Sub"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    names = set(SUB_VARIABLE.findall(body))
    assert names <= set(template["Resources"]) | set(template["Parameters"]) | {"AWS::Region", "AWS::StackName"}
    dashboard = json.loads(
        SUB_VARIABLE.sub(lambda match: "1" if match[1] in template["Parameters"] else match[0], body)
    )
    metric, namespace_variable = emitted_metric(result.project_path)
    variables = the_function(template)["Environment"]["Variables"]
    assert variables[namespace_variable] == {"Ref": "AWS::StackName"}, "the dashboard's ${AWS::StackName}"
    custom = powertools_dimensions(metric, variables["POWERTOOLS_SERVICE_NAME"], "${Function}")
    shown = set()
    for widget in dashboard["widgets"]:
        for namespace, name, *pairs in widget["properties"]["metrics"]:
            dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
            if namespace == "${AWS::StackName}":
                assert dimensions == custom[name], name
            else:
                dimension, kind = AWS_METRICS[namespace, name]
                assert dimensions == {dimension: "${" + resource_of_type(template, kind) + "}"}, name
            shown.add(name)
    assert shown >= {metric, "ColdStart"}


@pytest.mark.parametrize("auth_mode", TEMPLATE_DEFAULTS["auth_mode"])
def test_the_function_uses_powertools_metrics_and_tracer(auth_mode, bake):
    package = package_dir(bake.ok(auth_mode=auth_mode).project_path)
    observability = parse(package / "observability.py")
    created = {
        ast.unparse(node.value.func)
        for node in observability.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
    }
    assert {"Metrics", "Tracer"} <= created
    app = parse(package / "app.py")
    (handler,) = [node for node in app.body if getattr(node, "name", None) == "handler"]
    decorators = [ast.unparse(decorator) for decorator in handler.decorator_list]
    assert "tracer.capture_lambda_handler(capture_response=False)" in decorators
    assert "metrics.log_metrics(capture_cold_start_metric=True)" in decorators
    # outermost first: the metric is added inside log_metrics, which flushes it
    assert decorators.index("metrics.log_metrics(capture_cold_start_metric=True)") < decorators.index("per_invocation")


# ---------------------------------------------------------------------------------------------------
# the storm threshold: derived from the connection budget, shown in the README


@pytest.mark.parametrize("tier", TEMPLATE_DEFAULTS["atlas_tier"])
def test_the_storm_threshold_is_one_wave_of_cold_environments_a_minute(tier):
    budget = connection_budget.derive(default_answers(atlas_tier=tier, network_mode="nat_gateway"))
    assert budget["connections_alarm_per_minute"] == budget["reserved_concurrency"] * budget["max_pool_size"]


def test_the_storm_threshold_follows_the_pool_size():
    budget = connection_budget.derive(default_answers(_max_pool_size="2"))
    assert budget["connections_alarm_per_minute"] == 2 * budget["reserved_concurrency"]


@pytest.mark.parametrize("combo", MATRIX, ids=combo_id)
def test_the_threshold_parameter_and_the_readme_show_the_derived_figure(combo, baked):
    result = baked[combo_id(combo)]
    figure = connection_budget.derive(result.context)["connections_alarm_per_minute"]
    assert result.template["Parameters"]["ConnectionsCreatedAlarmThreshold"]["Default"] == int(figure)
    start, end = "<!-- section:observability -->", "<!-- /section:observability -->"
    section = result.readme[result.readme.index(start) : result.readme.index(end)]
    assert f"**{figure}**" in section
    for name in alarms(result.template):
        assert f"`{name}`" in section, f"the README does not explain {name}"
