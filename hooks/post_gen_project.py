"""Put each per-mode file in place for the chosen options, then print the Atlas-side steps.

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
CLOUDFORMATION = ANSWERS["atlas_provisioning"] == "cloudformation"
NETWORK = ANSWERS["network_mode"]
NEW_VPC = ANSWERS["vpc"] == "new"
SNAP_START = ANSWERS["snap_start"] == "yes"
PACKAGE = Path("src") / ANSWERS["package_name"]
TESTS = Path("tests")
SUPPORT = TESTS / "support"
SCHEMAS = Path("registry-schemas")
# MongoDB::Atlas type -> whether the stack declares it (templates/stack/atlas/, cloudformation only);
# registry-schemas/ keeps the schema of each one declared, for cfn-lint
ATLAS_TYPES = {
    "DatabaseUser": CLOUDFORMATION,
    "PrivateEndpointService": CLOUDFORMATION and NETWORK == "private_endpoint",
    "PrivateEndpointAWS": CLOUDFORMATION and NETWORK == "private_endpoint",
    "NetworkContainer": CLOUDFORMATION and NETWORK == "peering",
    "NetworkPeering": CLOUDFORMATION and NETWORK == "peering",
    "ProjectIpAccessList": CLOUDFORMATION and (NETWORK == "peering" or (NETWORK == "nat_gateway" and NEW_VPC)),
}

# path in the template -> path in the project, or None to remove it (paths relative to the project)
FILES = {
    # how the function authenticates: database.py imports auth, the same text in every mode
    PACKAGE / "auth_iam.py": PACKAGE / "auth.py" if IAM else None,
    PACKAGE / "auth_scram.py": PACKAGE / "auth.py" if SCRAM else None,
    Path("src") / "requirements-iam.txt": Path("src") / "requirements.txt" if IAM else None,
    Path("src") / "requirements-scram.txt": Path("src") / "requirements.txt" if SCRAM else None,
    TESTS / "test_auth_iam.py": TESTS / "test_auth.py" if IAM else None,
    TESTS / "test_auth_scram.py": TESTS / "test_auth.py" if SCRAM else None,
    # the tests' wiring of the auth mode: IAM's local STS and the servers' MONGODB-AWS side,
    # SCRAM's users and local Secrets Manager
    SUPPORT / "auth_iam.py": SUPPORT / "auth.py" if IAM else None,
    SUPPORT / "auth_scram.py": SUPPORT / "auth.py" if SCRAM else None,
    SUPPORT / "sts.py": SUPPORT / "sts.py" if IAM else None,
    SUPPORT / "mongodb_aws.py": SUPPORT / "mongodb_aws.py" if IAM else None,
    SUPPORT / "scram_users.py": SUPPORT / "scram_users.py" if SCRAM else None,
    SUPPORT / "secretsmanager.py": SUPPORT / "secretsmanager.py" if SCRAM else None,
    # SnapStart's runtime hooks (the handler module that registers them) and their tests
    PACKAGE / "snapshot.py": PACKAGE / "snapshot.py" if SNAP_START else None,
    TESTS / "test_snapshot.py": TESTS / "test_snapshot.py" if SNAP_START else None,
    SUPPORT / "restore.py": SUPPORT / "restore.py" if SNAP_START else None,
    SUPPORT / "snap_init.py": SUPPORT / "snap_init.py" if SNAP_START else None,
    # the Atlas side in the stack: its types' schemas, the cfn-lint settings and wrapper that use them
    **{
        SCHEMAS / f"MongoDB-Atlas-{name}.json": SCHEMAS / f"MongoDB-Atlas-{name}.json" if declared else None
        for name, declared in ATLAS_TYPES.items()
    },
    Path(".cfnlintrc.yaml"): Path(".cfnlintrc.yaml") if CLOUDFORMATION else None,
    Path("tools") / "cfn_lint_registry.py": Path("tools") / "cfn_lint_registry.py" if CLOUDFORMATION else None,
}

# The Atlas-side steps for these answers, selected and filled in from cookiecutter.json's
# _atlas_steps table when the project was rendered (the README shows the same steps).
STEPS_FILE = Path("tools") / "atlas_steps.json"


def place(project_dir, table=FILES):
    """Rename or remove each file as the table says; return what was done, as (path, new path or
    None) pairs in the table's order. A file the table keeps under its own name is left alone; a
    folder a removal leaves empty goes too."""
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
            if path.parent != Path(project_dir) and not any(path.parent.iterdir()):
                path.parent.rmdir()
        else:
            destination = Path(project_dir) / target
            if destination.exists():
                raise FileExistsError(f"{source} cannot become {target}: it exists already")
            path.rename(destination)
        done.append((source, target))
    return done


def fill(text, values):
    """Put the answers into a step's {token}s (the tokens are the table's, values from the file)."""
    for token, value in values.items():
        text = text.replace("{" + token + "}", value)
    return text


def next_steps(answers, table):
    """The message printed after generation: each Atlas-side step's title, in order."""
    lines = [f"Created {answers['project_slug']}/. Try it locally first: make install && make test && make invoke"]
    lines.append(
        f"Then, for {answers['network_mode']} + {answers['auth_mode']} "
        '(README.md, "Atlas-side steps"; after a deploy `make atlas-steps` fills in the values):'
    )
    titles = [fill(step["title"], table["values"]) for step in table["steps"]]
    lines += [f"  {number}. {title}" for number, title in enumerate(titles, start=1)]
    return "\n".join(lines)


# cookiecutter.json's default atlas_cluster_host, one per network mode: Atlas's documentation's
# example cluster, which resolves nowhere (tests check these are still the defaults)
EXAMPLE_HOSTS = frozenset({"cluster0-pl-0.abcde.mongodb.net", "cluster0.abcde.mongodb.net"})


def placeholder_warning(answers):
    """A line saying the host is still the example, and where each environment's real one goes; or None."""
    host = answers["atlas_cluster_host"]
    if host not in EXAMPLE_HOSTS:
        return None
    return (
        f"WARNING: atlas_cluster_host is still the example {host}, which is no cluster of yours: set each "
        "environment's real host as AtlasClusterHost=... in samconfig.toml's parameter_overrides "
        '(README.md, "Environments") before you deploy.'
    )


def main():
    place(Path.cwd())
    print(next_steps(ANSWERS, json.loads((Path.cwd() / STEPS_FILE).read_text(encoding="utf-8"))))
    warning = placeholder_warning(ANSWERS)
    if warning:
        print(warning)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
