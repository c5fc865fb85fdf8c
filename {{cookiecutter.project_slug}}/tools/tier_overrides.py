"""Print the parameter overrides that deploy this project to a cluster of another Atlas tier.

    python tools/tier_overrides.py M30

template.yaml's defaults are the connection budget of the tier the project was generated for:
the reserved concurrency, each route's throttling, the connection storm alarm's threshold, the
monitors' connect timeout and the document depth. tier_overrides.json holds the same figures for
every tier, derived by the same code with the project's other answers when it was rendered. The
line printed goes into an environment's parameter_overrides in samconfig.toml (README.md,
"Environments"), next to that environment's AtlasClusterHost and DatabaseName.
"""

import argparse
import json
import sys
from pathlib import Path

TABLE = json.loads(Path(__file__).with_name("tier_overrides.json").read_text(encoding="utf-8"))


def overrides(tier: str) -> str:
    """The tier's parameters as Name=value pairs; ValueError says why when it has none."""
    entry = TABLE["tiers"].get(tier)
    if entry is None:
        tiers = ", ".join(TABLE["tiers"])
        raise ValueError(f"{tier!r} is not an Atlas tier; choose one of {tiers}")
    if "refused" in entry:
        raise ValueError(f"{tier} does not fit this project: {entry['refused']}")
    return " ".join(f"{name}={value}" for name, value in entry["parameters"].items())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tier", help=f"an Atlas tier, such as {TABLE['rendered_for']}")
    args = parser.parse_args(argv)
    try:
        print(overrides(args.tier))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
