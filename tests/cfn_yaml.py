"""A YAML loader that understands CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...).

Each tag becomes the long form CloudFormation would see, e.g. `!Ref X` -> {"Ref": "X"},
`!Condition C` -> {"Condition": "C"} and `!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]}, so tests
assert on plain dicts.
"""

from pathlib import Path

import yaml


class CfnLoader(yaml.SafeLoader):
    pass


def _construct(loader, tag_suffix, node):
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct)


def load(path):
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=CfnLoader)
