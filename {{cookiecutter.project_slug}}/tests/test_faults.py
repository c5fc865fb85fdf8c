"""The database stopping or hanging mid-life: 503 before the deadline, then 200 again."""

import json

import pytest

from tests.conftest import FAULT_TIMEOUT_MS, under_faults


@pytest.fixture
def controllable(mongo):
    yield from under_faults(mongo)


def status_of(app, event, context):
    return app.handler(event, context)["statusCode"]


@pytest.mark.parametrize("name", ["health", "post-item", "get-item"])
def test_stopped_database_is_503_before_the_deadline_then_200(
    app, controllable, event, lambda_context, name
):
    assert status_of(app, event("health"), lambda_context()) == 200
    controllable.stop()
    context = lambda_context(FAULT_TIMEOUT_MS)

    response = app.handler(event(name), context)

    assert response["statusCode"] == 503
    assert "unavailable" in json.loads(response["body"])["error"]
    assert context.get_remaining_time_in_millis() > 0
    controllable.start()
    assert status_of(app, event("health"), lambda_context()) == 200


def test_server_that_never_answers_is_503_before_the_deadline(
    app, controllable, event, lambda_context
):
    assert status_of(app, event("health"), lambda_context()) == 200
    controllable.hang()
    context = lambda_context(FAULT_TIMEOUT_MS)

    assert status_of(app, event("health"), context) == 503
    assert context.get_remaining_time_in_millis() > 0
    controllable.resume()
    assert status_of(app, event("health"), lambda_context()) == 200
