"""Remove what the chosen options do not use, then print the next steps.

Everything a mode does not need is listed once, in PRUNE; nothing else deletes files.
The answers are rendered once, as data, into ANSWERS; tests render this file,
import it and call its functions directly.
"""

import json
import shutil
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

SCRAM = ANSWERS["auth_mode"] == "scram"
PACKAGE = Path("src") / ANSWERS["package_name"]

# path (relative to the project) -> keep it?
PRUNE = {
    PACKAGE / "credentials.py": SCRAM,
    Path("tests") / "test_credentials.py": SCRAM,
}

NETWORK_STEPS = {
    "private_endpoint": (
        "Create the Atlas private endpoint service for {region} (atlas privateEndpoints aws create), "
        "deploy the stack with its service name, then register the stack's VpcEndpointId in Atlas."
    ),
    "peering": (
        "Peer the Atlas project's VPC with the function's VPC (atlas networking peering create aws), "
        "accept the request in AWS, and deploy the stack with the peering connection id and Atlas CIDR."
    ),
    "nat_gateway": "Deploy the stack, then add its NAT Elastic IP (/32) to the Atlas IP access list.",
}

AUTH_STEPS = {
    "iam": (
        "Create the Atlas database user for the stack's FunctionRoleArn output "
        "(AWS IAM role, readWrite on {database} only)."
    ),
    "scram": (
        "Create a SCRAM database user (readWrite on {database} only), store its username and "
        "password as a JSON secret in AWS Secrets Manager, and deploy with the secret's ARN."
    ),
}


def prune(project_dir, table=PRUNE):
    """Delete every path whose keep-condition is false; return the deleted paths."""
    removed = []
    for path, keep in table.items():
        target = Path(project_dir) / path
        if keep or not target.exists():
            continue
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
        removed.append(path)
    return removed


def next_steps(answers):
    values = {"region": answers["aws_region"], "database": answers["database_name"]}
    steps = [
        NETWORK_STEPS[answers["network_mode"]].format(**values),
        AUTH_STEPS[answers["auth_mode"]].format(**values),
        "Call GET /health on the ApiUrl output with a SigV4-signed request.",
    ]
    lines = [f"Created {answers['project_slug']}/. Try it locally first: make install && make test && make invoke"]
    lines.append(f"Then, for {answers['network_mode']} + {answers['auth_mode']} (details in README.md):")
    lines += [f"  {number}. {step}" for number, step in enumerate(steps, start=1)]
    return "\n".join(lines)


def main():
    prune(Path.cwd())
    print(next_steps(ANSWERS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
