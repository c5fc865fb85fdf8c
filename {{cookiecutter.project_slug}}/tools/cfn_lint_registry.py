"""cfn-lint with the MongoDB::Atlas registry schemas checked like AWS's own resource types.

    python tools/cfn_lint_registry.py --registry-schemas registry-schemas -- template.yaml

Any other cfn-lint argument works as with cfn-lint itself. `--registry-schemas` makes cfn-lint
load the schemas in registry-schemas/, so the MongoDB::Atlas types exist for it; but from 1.43.0
to at least 1.58.0 (the version requirements-dev.txt pins) it then skips those types' properties
and GetAtt attributes without a word: ProviderSchemaManager.get_resource_schemas_by_regions()
yields only the types of its own per-region index, and registry types are never in it. This
script makes it yield the registry schema for every region, then runs cfn-lint's command line,
so a misspelt, missing or mistyped property, a value outside an enum and a GetAtt of an attribute
the type does not return are errors (E3002, E3003, E3012, E3030, E1010, E6101).

It first proves that this still works: a registry type with a property no schema has must be an
E3002 error. If it is not (a cfn-lint upgrade changed what is patched here), it stops with exit
status 1 instead of passing a template it did not check.
"""

import json
import sys
from pathlib import Path

from cfnlint.api import lint
from cfnlint.config import ConfigMixIn, ManualArgs
from cfnlint.runner import main
from cfnlint.schema import manager
from cfnlint.version import __version__

_index_only = manager.ProviderSchemaManager.get_resource_schemas_by_regions


def _with_registry_schemas(self, resource_type, regions):
    registry = self._registry_schemas.get(resource_type)
    if registry is None:
        yield from _index_only(self, resource_type, regions)
    else:
        yield list(regions), registry


manager.ProviderSchemaManager.get_resource_schemas_by_regions = _with_registry_schemas


def registry_types(paths: list[str]) -> list[str]:
    """The typeName of every schema cfn-lint loads from these folders (it reads every *.json)."""
    files = sorted(file for path in paths for file in Path(path).rglob("*.json"))
    return [json.loads(file.read_text(encoding="utf-8"))["typeName"] for file in files]


def properties_are_checked(paths: list[str], type_name: str) -> bool:
    """Whether a property the type's schema lacks is an error for cfn-lint as patched here."""
    canary = {"Resources": {"Canary": {"Type": type_name, "Properties": {"NotAProperty": "x"}}}}
    matches = lint(json.dumps(canary), config=ManualArgs(registry_schemas=paths))
    return any(match.rule.id == "E3002" for match in matches)


def run(argv: list[str]) -> int:
    paths = ConfigMixIn(argv).registry_schemas
    types = registry_types(paths)
    if types and not properties_are_checked(paths, types[0]):
        print(
            f"cfn-lint {__version__} no longer checks registry types' properties through "
            f"{Path(__file__).name}: {types[0]} took a property its schema lacks. Update the "
            "patch here, or drop it if cfn-lint checks them itself now.",
            file=sys.stderr,
        )
        return 1
    sys.argv = [sys.argv[0], *argv]
    return main()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
