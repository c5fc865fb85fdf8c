"""Print the Atlas-side steps that follow a deploy, every value filled in from the deployed stack.

    python tools/atlas_steps.py [--config-env ENV] [--config-file FILE] [--stack-name NAME]
                                [--region REGION]

The steps are the ones README.md lists for this project's choices, read from atlas_steps.json
(rendered by the template from the same table as the README). The environment (`sam deploy
--config-env`, `make atlas-steps ENV=...`; "default" if none) chooses the stack: its stack_name and
region in samconfig.toml, as `sam deploy` reads them, or `<project>-<env>` when the file names no
stack for it. This reads that stack with CloudFormation DescribeStacks (your usual AWS credentials;
like any boto3 client it honours AWS_ENDPOINT_URL_CLOUDFORMATION) and prints the commands with the
stack's outputs, parameters and account in place of the README's "$(out Name)", "$(param Name)" and
"$ACCOUNT". It changes nothing, in AWS or in Atlas.
"""

import argparse
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

TABLE = json.loads((Path(__file__).with_name("atlas_steps.json")).read_text(encoding="utf-8"))
PROJECT_ROOT = Path(__file__).parent.parent  # where samconfig.toml is, as `sam deploy` expects it
# "$(out Name)", "$(param Name)" and "$ACCOUNT" as the README's shell helpers write them; quotes
# around one alone go with it ("$(out VpcId)" -> vpc-...), around a longer word they stay
# ("$(out Ip)/32").
SHELL_VALUE = re.compile(
    r'(?P<quote>"?)\$(?:\((?P<kind>out|param) (?P<name>\w+)\)|ACCOUNT\b)(?P=quote)'
)


ONCE = "once per account, not per environment: skip it if another environment did it"


@dataclass(frozen=True)
class Stack:
    name: str
    region: str
    account: str
    outputs: dict
    parameters: dict

    def value(self, kind: str, name: str) -> str:
        found = (self.outputs if kind == "out" else self.parameters).get(name)
        label = "output" if kind == "out" else "parameter"
        return found or f"<{name} {label}: not in the stack yet>"


class ConfigProblem(Exception):
    """An environment samconfig.toml does not have, or a samconfig.toml that cannot be read."""


@dataclass(frozen=True)
class Environment:
    name: str
    stack_name: str
    region: str


def environment(name: str, config_file: Path, table: dict = TABLE) -> Environment:
    """The stack and region `sam deploy --config-env NAME` uses, from samconfig.toml.

    A command's own section overrides the environment's global one, as the SAM CLI reads them
    (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-sam-cli-config.html,
    "Configuration precedence"); what the file leaves out follows the project's convention: the
    stack `<project>` for "default", `<project>-<env>` for another, in the project's region.
    """
    try:
        config = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        config = {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigProblem(f"{config_file}: {error}") from None
    # `version = 0.1` sits beside the environments, which are tables
    known = [key for key, value in config.items() if isinstance(value, dict)]
    if name not in known and name != "default":
        has = ", ".join(known) if known else "none"
        raise ConfigProblem(f"environment {name!r}: not in {config_file.name}, which has {has}")
    sections = config.get(name, {})
    settings = {
        **sections.get("global", {}).get("parameters", {}),
        **sections.get("deploy", {}).get("parameters", {}),
    }
    project = table["values"]["stack"]
    convention = project if name == "default" else f"{project}-{name}"
    return Environment(
        name=name,
        stack_name=settings.get("stack_name") or convention,
        region=settings.get("region") or table["values"]["region"],
    )


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


def fill(text: str, stack: Stack, table: dict = TABLE) -> str:
    """The text with the project's tokens and the stack's values in place."""
    values = table["values"] | {"region": stack.region, "stack": stack.name}
    for token, value in values.items():
        text = text.replace("{" + token + "}", value)

    def shell_value(match: re.Match) -> str:
        if match["kind"] is None:
            return stack.account
        return stack.value(match["kind"], match["name"])

    return SHELL_VALUE.sub(shell_value, text)


def steps(stack: Stack, table: dict = TABLE) -> list[str]:
    """The numbered steps that follow the first deploy, as README.md numbers them."""
    printed = []
    for number, step in enumerate(table["steps"], start=1):
        if step["phase"] != "after":
            continue
        title = fill(step["title"], stack, table)
        done_when = step.get("done_when_parameter")
        if done_when and stack.parameters.get(done_when):
            done = f"{done_when} is {stack.parameters[done_when]}"
            printed.append(f"{number}. (done: {done}) {title}")
            continue
        commands = "\n".join(f"  {fill(line, stack, table)}" for line in step["commands"])
        text = f" {fill(step['text'], stack, table)}" if step["text"] else ""
        # README.md marks the steps done once per account, not per environment: another
        # environment's run may have done it already
        once = "" if step["per_environment"] else f"({ONCE}) "
        printed.append(f"{number}. {once}{title}.{text}\n{commands}")
    return printed


def problem(message: str) -> int:
    """One line on stderr, naming what is missing, and a non-zero exit: no traceback."""
    print(f"ERROR: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-env", default="default", help="the samconfig.toml environment")
    parser.add_argument("--config-file", type=Path, default=PROJECT_ROOT / "samconfig.toml")
    parser.add_argument("--stack-name", help="instead of the environment's")
    parser.add_argument("--region", help="instead of the environment's")
    args = parser.parse_args(argv)
    try:
        chosen = environment(args.config_env, args.config_file)
    except ConfigProblem as error:
        return problem(str(error))
    stack_name, region = args.stack_name or chosen.stack_name, args.region or chosen.region
    try:
        stack = read_stack(stack_name, region)
    except NoCredentialsError:
        return problem(
            "AWS credentials: none found. Sign in the way you deploy (aws sso login, aws "
            "configure, or AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and run "
            "it again"
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        where = f"stack {stack_name} in {region}"
        return problem(f"{where}: {details.get('Code')}: {details.get('Message')}")
    except BotoCoreError as error:
        return problem(f"stack {stack_name} in {region}: {error}")
    choices = TABLE["choices"]
    print(
        f"Atlas-side steps for {stack.name} ({choices['network_mode']}, {choices['auth_mode']}) "
        f"in {stack.region}, environment {chosen.name}, after the deploy:"
    )
    for step in steps(stack):
        print(step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
