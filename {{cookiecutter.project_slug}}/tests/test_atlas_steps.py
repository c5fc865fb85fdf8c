"""tools/atlas_steps.py: the Atlas-side steps, read from a real CloudFormation API (moto's server)
and, for every network and auth mode, from plain outputs."""

import json

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tools import atlas_steps

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
OUTPUTS = {
    "ApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com/",
    "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:demo-Function-1",
    "FunctionRoleArn": "arn:aws:iam::123456789012:role/demo-FunctionRole-1",
    "FunctionSecurityGroupId": "sg-0123456789abcdef0",
    "VpcId": "vpc-0123456789abcdef0",
    "VpcCidr": "10.80.0.0/16",
    "VpcEndpointId": "vpce-0123456789abcdef0",
    "NatElasticIp": "203.0.113.10",
}
PARAMETERS = {
    "AtlasCidrBlock": "192.168.248.0/21",
    "PeeringConnectionId": "",
    "AtlasEndpointServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
    "AtlasSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/atlas-AbCdEf",
}


def stack(**parameters) -> atlas_steps.Stack:
    return atlas_steps.Stack(
        name="demo",
        region=REGION,
        account=ACCOUNT,
        outputs=dict(OUTPUTS),
        parameters=PARAMETERS | parameters,
    )


@pytest.fixture(scope="module")
def cloudformation(tmp_path_factory):
    """A moto server holding a stack with this project's name, outputs and parameters."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    patch = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ENDPOINT_URL_CLOUDFORMATION": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": str(tmp_path_factory.mktemp("aws") / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path_factory.mktemp("aws") / "none"),
    }.items():
        patch.setenv(name, value)
    template = {
        "Parameters": {key: {"Type": "String", "Default": v} for key, v in PARAMETERS.items()},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in OUTPUTS.items()},
    }
    client = boto3.client("cloudformation", region_name=REGION)
    client.create_stack(StackName=atlas_steps.STACK_NAME, TemplateBody=json.dumps(template))
    yield client
    patch.undo()
    server.stop()


def test_reads_outputs_parameters_and_account_from_the_stack(cloudformation):
    read = atlas_steps.read_stack(atlas_steps.STACK_NAME, REGION)
    assert read.outputs == OUTPUTS
    assert read.parameters == PARAMETERS
    assert (read.account, read.region, read.name) == (ACCOUNT, REGION, atlas_steps.STACK_NAME)


def test_main_prints_numbered_steps_for_this_project(cloudformation, capsys):
    assert atlas_steps.main(["--region", REGION]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"Atlas-side steps for {atlas_steps.STACK_NAME} ")
    assert "1. " in printed
    assert f"GET {OUTPUTS['ApiUrl']}health" in printed


def test_private_endpoint_registers_the_stacks_endpoint():
    text = "\n".join(atlas_steps.steps(stack(), network_mode="private_endpoint", auth_mode="iam"))
    assert (
        "atlas privateEndpoints aws interfaces create <endpointServiceId> "
        "--privateEndpointId vpce-0123456789abcdef0"
    ) in text
    assert "accessLists" not in text


def test_peering_before_and_after_the_connection_exists():
    before = "\n".join(atlas_steps.steps(stack(), network_mode="peering", auth_mode="iam"))
    assert (
        "atlas networking peering create aws --accountId 123456789012 --region us-east-1 "
        "--vpcId vpc-0123456789abcdef0 --routeTableCidrBlock 10.80.0.0/16 "
        "--atlasCidrBlock 192.168.248.0/21"
    ) in before
    assert "sam deploy --parameter-overrides PeeringConnectionId=<pcx-id>" in before
    peered = stack(PeeringConnectionId="pcx-0abc")
    after = "\n".join(atlas_steps.steps(peered, network_mode="peering", auth_mode="iam"))
    assert "peering create" not in after and "through pcx-0abc" in after
    for text in (before, after):
        assert "atlas accessLists create sg-0123456789abcdef0 --type awsSecurityGroup" in text


@pytest.mark.parametrize(
    ("vpc", "expected"),
    [
        ("new", "atlas accessLists create 203.0.113.10/32 --type cidrBlock"),
        ("existing", "describe-nat-gateways --region us-east-1 --filter Name=vpc-id,Values=vpc-"),
    ],
)
def test_nat_gateway_allows_the_nat_address(vpc, expected):
    found = atlas_steps.steps(stack(), network_mode="nat_gateway", auth_mode="iam", vpc=vpc)
    text = "\n".join(found)
    assert expected in text


def test_auth_steps():
    iam = atlas_steps.steps(stack(), network_mode="nat_gateway", auth_mode="iam")[-2]
    assert iam.endswith(
        "atlas dbusers create --awsIAMType ROLE --username "
        f"{OUTPUTS['FunctionRoleArn']} --role readWrite@{atlas_steps.DATABASE}"
    )
    scram = atlas_steps.steps(stack(), network_mode="nat_gateway", auth_mode="scram")[-2]
    assert PARAMETERS["AtlasSecretArn"] in scram and "password" not in scram.lower()


def test_missing_outputs_are_named_not_invented():
    empty = atlas_steps.Stack("demo", REGION, ACCOUNT, outputs={}, parameters={})
    text = "\n".join(atlas_steps.steps(empty, network_mode="private_endpoint", auth_mode="iam"))
    assert "<VpcEndpointId output: not in the stack yet>" in text
