"""Print the Atlas-side steps for the deployed stack, every value filled in from its outputs.

    python tools/atlas_steps.py [--stack-name NAME] [--region REGION]

It reads the stack with CloudFormation DescribeStacks (your usual AWS credentials; like any boto3
client it honours AWS_ENDPOINT_URL_CLOUDFORMATION) and prints the MongoDB Atlas CLI commands that
README.md lists, in order, for this project's choices. It changes nothing, in AWS or in Atlas.
"""

import argparse
import sys
from dataclasses import dataclass

import boto3

# The choices this project was generated with.
STACK_NAME = {{ cookiecutter.project_slug | tojson }}
REGION = {{ cookiecutter.aws_region | tojson }}
DATABASE = {{ cookiecutter.database_name | tojson }}
CLUSTER_HOST = {{ cookiecutter.atlas_cluster_host | tojson }}
AUTH_MODE = {{ cookiecutter.auth_mode | tojson }}
NETWORK_MODE = {{ cookiecutter.network_mode | tojson }}
VPC = {{ cookiecutter.vpc | tojson }}


@dataclass(frozen=True)
class Stack:
    name: str
    region: str
    account: str
    outputs: dict
    parameters: dict

    def output(self, key: str) -> str:
        return self.outputs.get(key) or f"<{key} output: not in the stack yet>"


def read_stack(stack_name: str, region: str) -> Stack:
    """The stack's outputs and parameters, and the account and region from its id."""
    cloudformation = boto3.client("cloudformation", region_name=region)
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    # arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>
    _, _, _, stack_region, account, _ = stack["StackId"].split(":", 5)
    return Stack(
        name=stack["StackName"],
        region=stack_region,
        account=account,
        outputs={item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])},
        parameters={
            item["ParameterKey"]: item.get("ParameterValue", "")
            for item in stack.get("Parameters", [])
        },
    )


def command(*parts: str) -> str:
    """One shell command, indented under its step."""
    return "  " + " ".join(parts)


def _private_endpoint_steps(stack: Stack) -> list[str]:
    service = stack.parameters.get("AtlasEndpointServiceName") or "<AtlasEndpointServiceName>"
    endpoint = stack.output("VpcEndpointId")
    return [
        f"The stack uses the Atlas private endpoint service {service}. Find its ID:\n"
        + command("atlas privateEndpoints aws list"),
        "Register the stack's interface endpoint with it, then wait for AVAILABLE:\n"
        + command(
            "atlas privateEndpoints aws interfaces create <endpointServiceId>",
            f"--privateEndpointId {endpoint}",
        )
        + "\n"
        + command(
            f"atlas privateEndpoints aws interfaces describe {endpoint}",
            "--endpointServiceId <endpointServiceId>",
        ),
        "No IP access list entry is needed. Connect through the private-endpoint host "
        f"({CLUSTER_HOST}).",
    ]


def _peering_steps(stack: Stack) -> list[str]:
    vpc_id, vpc_cidr = stack.output("VpcId"), stack.output("VpcCidr")
    atlas_cidr = stack.parameters.get("AtlasCidrBlock") or "<AtlasCidrBlock>"
    peering = stack.parameters.get("PeeringConnectionId", "")
    steps = []
    if not peering:
        steps += [
            "Ask Atlas to peer its project VPC with the stack's VPC:\n"
            + command(
                "atlas networking peering create aws",
                f"--accountId {stack.account} --region {stack.region}",
                f"--vpcId {vpc_id} --routeTableCidrBlock {vpc_cidr} --atlasCidrBlock {atlas_cidr}",
            ),
            "Accept the request in AWS:\n"
            + command(
                f"aws ec2 describe-vpc-peering-connections --region {stack.region}",
                f"--filters Name=accepter-vpc-info.vpc-id,Values={vpc_id}",
                "Name=status-code,Values=pending-acceptance",
                "--query 'VpcPeeringConnections[0].VpcPeeringConnectionId' --output text",
            )
            + "\n"
            + command(
                f"aws ec2 accept-vpc-peering-connection --region {stack.region}",
                "--vpc-peering-connection-id <pcx-id>",
            ),
            "Deploy again with the peering connection, which adds the routes to the Atlas block:\n"
            + command("sam deploy --parameter-overrides PeeringConnectionId=<pcx-id>"),
        ]
    else:
        steps.append(f"Peering is in place: the stack routes {atlas_cidr} through {peering}.")
    steps.append(
        "Allow the function on the Atlas access list (by security group, or by the VPC block):\n"
        + command(
            f"atlas accessLists create {stack.output('FunctionSecurityGroupId')}",
            f'--type awsSecurityGroup --comment "{stack.name} function"',
        )
        + "\n"
        + command(
            f"# or: atlas accessLists create {vpc_cidr} --type cidrBlock",
            f'--comment "{stack.name} VPC"',
        )
    )
    return steps


def _nat_gateway_steps(stack: Stack, vpc: str) -> list[str]:
    comment = f'--comment "{stack.name} NAT gateway"'
    if vpc == "new":
        return [
            "Allow the NAT gateway's address on the Atlas IP access list:\n"
            + command(
                f"atlas accessLists create {stack.output('NatElasticIp')}/32 --type cidrBlock",
                comment,
            )
        ]
    return [
        "Allow your NAT gateways' addresses on the Atlas IP access list, each as a /32:\n"
        + command(
            f"aws ec2 describe-nat-gateways --region {stack.region}",
            f"--filter Name=vpc-id,Values={stack.output('VpcId')} Name=state,Values=available",
            "--query 'NatGateways[].NatGatewayAddresses[].PublicIp' --output text",
        )
        + "\n"
        + command("atlas accessLists create <public-ip>/32 --type cidrBlock", comment)
    ]


def steps(
    stack: Stack, network_mode: str = NETWORK_MODE, auth_mode: str = AUTH_MODE, vpc: str = VPC
) -> list[str]:
    """The Atlas-side steps still to do after a deploy, in order."""
    network = {
        "private_endpoint": lambda: _private_endpoint_steps(stack),
        "peering": lambda: _peering_steps(stack),
        "nat_gateway": lambda: _nat_gateway_steps(stack, vpc),
    }[network_mode]()
    if auth_mode == "iam":
        user = (
            "Create the database user for the execution role "
            f"(AWS IAM role, readWrite on {DATABASE}):\n"
            + command(
                "atlas dbusers create --awsIAMType ROLE",
                f"--username {stack.output('FunctionRoleArn')} --role readWrite@{DATABASE}",
            )
        )
    else:
        secret = stack.parameters.get("AtlasSecretArn") or "<AtlasSecretArn>"
        user = (
            f"The SCRAM user's credentials come from {secret}; "
            f"check that the user has readWrite@{DATABASE}:\n" + command("atlas dbusers list")
        )
    check = f"Call GET {stack.output('ApiUrl')}health with a SigV4-signed request (README.md)."
    return [*network, user, check]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", default=STACK_NAME)
    parser.add_argument("--region", default=REGION)
    args = parser.parse_args(argv)
    stack = read_stack(args.stack_name, args.region)
    print(f"Atlas-side steps for {stack.name} ({NETWORK_MODE}, {AUTH_MODE}) in {stack.region}:")
    for number, step in enumerate(steps(stack), start=1):
        print(f"{number}. {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
