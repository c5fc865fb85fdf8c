"""The peering accepter of atlas_provisioning=cloudformation with network_mode=peering: the custom resource's
inline code, taken from a rendered template and run against a fake EC2 client, with a local HTTP server
standing in for the response URL CloudFormation gives. It must always answer, accept only a request to the
stack's VPC, and answer SUCCESS only once the connection is active."""

import http.server
import json
import sys
import threading
import types

import pytest
from botocore.exceptions import ClientError

PEERING = {"auth_mode": "iam", "network_mode": "peering", "vpc": "new", "atlas_provisioning": "cloudformation"}
CONNECTION, VPC = "pcx-0123456789abcdef0", "vpc-0fedcba9876543210"


@pytest.fixture(scope="module")
def code(bake):
    function = bake.ok(**PEERING).template["Resources"]["PeeringAccepterFunction"]["Properties"]
    assert function["Handler"] == "index.handler" and len(function["Code"]["ZipFile"]) <= 4096  # ZipFile's limit
    return function["Code"]["ZipFile"]


def client_error(code):
    return ClientError({"Error": {"Code": code, "Message": code}}, "DescribeVpcPeeringConnections")


class FakeEc2:
    """Answers DescribeVpcPeeringConnections with the next of `states` (the last repeats; an exception is
    raised) and records AcceptVpcPeeringConnection calls."""

    def __init__(self, *states, accepter_vpc=VPC):
        self.states, self.accepter_vpc, self.calls = list(states), accepter_vpc, []

    def describe_vpc_peering_connections(self, VpcPeeringConnectionIds):  # boto3's own parameter name
        self.calls.append(("describe", *VpcPeeringConnectionIds))
        if VpcPeeringConnectionIds == [""]:
            raise client_error("InvalidVpcPeeringConnectionId.Malformed")
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(state, Exception):
            raise state
        connection = {"AccepterVpcInfo": {"VpcId": self.accepter_vpc}, "Status": {"Code": state, "Message": state}}
        return {"VpcPeeringConnections": [connection]}

    def accept_vpc_peering_connection(self, VpcPeeringConnectionId):
        self.calls.append(("accept", VpcPeeringConnectionId))


@pytest.fixture
def response_url():
    """A local server for the response CloudFormation waits for; yields (url, the bodies it received)."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):  # http.server's method name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response", received
    server.shutdown()
    thread.join()


class Clock:
    """time.monotonic and time.sleep for the accepter: sleeping moves the clock on at once."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Context:
    """The Lambda context the handler uses: 300 s to run, less what the clock has spent."""

    log_stream_name = "stream"

    def __init__(self, clock):
        self.clock = clock

    def get_remaining_time_in_millis(self):
        return int((300 - self.clock.now) * 1000)


def invoke(code, ec2, response_url, monkeypatch, request="Create", connection=CONNECTION, physical=None):
    """Run the accepter's handler once for a CloudFormation request; return the response it sent."""
    url, received = response_url
    boto3 = types.ModuleType("boto3")
    boto3.client = lambda service: ec2 if service == "ec2" else pytest.fail(f"unexpected client {service}")
    monkeypatch.setitem(sys.modules, "boto3", boto3)
    module = types.ModuleType("index")
    exec(compile(code, "index.py", "exec"), module.__dict__)  # the rendered template's own code
    clock = Clock()
    monkeypatch.setattr(module, "time", types.SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    event = {
        "RequestType": request,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/demo/1",
        "RequestId": "request-1",
        "LogicalResourceId": "AtlasPeeringAccepter",
        "ResourceProperties": {"ServiceToken": "arn", "VpcPeeringConnectionId": connection, "VpcId": VPC},
    }
    if physical:
        event["PhysicalResourceId"] = physical
    module.handler(event, Context(clock))
    (response,) = received
    identity = ("StackId", "RequestId", "LogicalResourceId")
    assert {key: response[key] for key in identity} == {key: event[key] for key in identity}
    return response


def test_accepts_a_pending_request_and_answers_once_it_is_active(code, response_url, monkeypatch):
    ec2 = FakeEc2("pending-acceptance", "provisioning", "active")
    response = invoke(code, ec2, response_url, monkeypatch)
    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", CONNECTION)
    assert [call for call in ec2.calls if call[0] == "accept"] == [("accept", CONNECTION)]
    assert ec2.calls[-1] == ("describe", CONNECTION), "SUCCESS only after seeing it active"


def test_waits_for_a_request_that_is_not_visible_yet(code, response_url, monkeypatch):
    ec2 = FakeEc2(
        client_error("InvalidVpcPeeringConnectionID.NotFound"), client_error("UnauthorizedOperation"), "active"
    )
    assert invoke(code, ec2, response_url, monkeypatch)["Status"] == "SUCCESS"


def test_an_active_connection_needs_no_acceptance(code, response_url, monkeypatch):
    ec2 = FakeEc2("active")
    response = invoke(code, ec2, response_url, monkeypatch, request="Update", physical=CONNECTION)
    assert response["Status"] == "SUCCESS" and ec2.calls == [("describe", CONNECTION)]


@pytest.mark.parametrize(
    ("ec2", "connection", "reason"),
    [
        (FakeEc2("pending-acceptance", accepter_vpc="vpc-0000000000000000a"), CONNECTION, "is not a request to"),
        (FakeEc2("failed"), CONNECTION, "is failed"),
        (FakeEc2("pending-acceptance"), "", "Malformed"),  # the peering's ConnectionId came back empty
        (FakeEc2(client_error("AccessDenied")), CONNECTION, "AccessDenied"),
        (FakeEc2("provisioning"), CONNECTION, "was not active after"),
    ],
    ids=["another-vpc", "failed", "no-connection-id", "access-denied", "never-active"],
)
def test_fails_with_the_reason_instead_of_leaving_cloudformation_waiting(
    code, response_url, monkeypatch, ec2, connection, reason
):
    response = invoke(code, ec2, response_url, monkeypatch, connection=connection)
    assert response["Status"] == "FAILED" and reason in response["Reason"], response
    assert response["PhysicalResourceId"], "CloudFormation refuses an empty physical id"
    if reason == "is not a request to":
        assert not [call for call in ec2.calls if call[0] == "accept"], "accepted a request to another VPC"


def test_delete_leaves_the_connection_to_the_atlas_peering(code, response_url, monkeypatch):
    ec2 = FakeEc2("active")
    response = invoke(code, ec2, response_url, monkeypatch, request="Delete", physical=CONNECTION)
    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", CONNECTION)
    assert ec2.calls == []
