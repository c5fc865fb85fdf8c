"""Put each per-mode file in place for the chosen options, then print the next steps.

Every file that exists for one mode only, or in one variant per mode, is listed once, in FILES:
the template holds each variant under its own name and FILES says the name it takes in the
project, or None to remove it. place() does what the table says; nothing else deletes or moves
files. The answers are rendered once, as data, into ANSWERS; tests render this file, import it
and call its functions directly.
"""

import json
import shutil
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

IAM = ANSWERS["auth_mode"] == "iam"
SCRAM = ANSWERS["auth_mode"] == "scram"
PACKAGE = Path("src") / ANSWERS["package_name"]
TESTS = Path("tests")
SUPPORT = TESTS / "support"

# path in the template -> path in the project, or None to remove it (paths relative to the project)
FILES = {
    # how the function authenticates: database.py imports auth, the same text in every mode
    PACKAGE / "auth_iam.py": PACKAGE / "auth.py" if IAM else None,
    PACKAGE / "auth_scram.py": PACKAGE / "auth.py" if SCRAM else None,
    Path("src") / "requirements-iam.txt": Path("src") / "requirements.txt" if IAM else None,
    Path("src") / "requirements-scram.txt": Path("src") / "requirements.txt" if SCRAM else None,
    TESTS / "test_auth_iam.py": TESTS / "test_auth.py" if IAM else None,
    TESTS / "test_auth_scram.py": TESTS / "test_auth.py" if SCRAM else None,
    # the tests' wiring of the auth mode; only SCRAM's needs a local Secrets Manager
    SUPPORT / "auth_iam.py": SUPPORT / "auth.py" if IAM else None,
    SUPPORT / "auth_scram.py": SUPPORT / "auth.py" if SCRAM else None,
    SUPPORT / "secretsmanager.py": SUPPORT / "secretsmanager.py" if SCRAM else None,
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


def place(project_dir, table=FILES):
    """Rename or remove each file as the table says; return what was done, as (path, new path or
    None) pairs in the table's order. A file the table keeps under its own name is left alone."""
    done = []
    for source, target in table.items():
        if target == source:
            continue
        path = Path(project_dir) / source
        if target is None:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        else:
            destination = Path(project_dir) / target
            if destination.exists():
                raise FileExistsError(f"{source} cannot become {target}: it exists already")
            path.rename(destination)
        done.append((source, target))
    return done


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
    place(Path.cwd())
    print(next_steps(ANSWERS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
