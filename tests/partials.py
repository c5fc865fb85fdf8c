"""The template's partials (templates/) rendered on their own, so tests derive what a combination
must contain from the same files template.yaml stitches together, instead of restating it.

    stack_concerns(answers)                  the partials template.yaml imports for these answers
    stack_section(answers, "resources")      {partial: {name: definition}} of that section, per partial
"""

import re
from pathlib import Path

import yaml
from cfn_yaml import CfnLoader
from cookiecutter.utils import create_env_with_context
from jinja2 import FileSystemLoader

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "{{cookiecutter.project_slug}}" / "template.yaml"
# {%- import "stack/vpc/" ~ cookiecutter.vpc ~ ".yaml" as vpc with context %}
IMPORT = re.compile(r"\{%-?\s*import\s+(?P<path>.+?)\s+as\s+(?P<name>\w+)\s+with context\s*-?%\}")


def _environment(answers):
    env = create_env_with_context({"cookiecutter": answers})
    env.loader = FileSystemLoader([str(ROOT / "templates")])
    return env


def stack_concerns(answers):
    """The partial paths template.yaml imports, its own path expressions evaluated for these answers."""
    env = _environment(answers)
    return [
        env.from_string("{{ " + match["path"] + " }}").render(cookiecutter=answers)
        for match in IMPORT.finditer(TEMPLATE.read_text(encoding="utf-8"))
    ]


def stack_section(answers, section):
    """Each imported partial's macro for one section (parameters, conditions, resources, outputs),
    rendered alone and parsed: {partial path: {logical name: definition}} (partials without it: {})."""
    env = _environment(answers)
    found = {}
    for path in stack_concerns(answers):
        source = (
            f'{{%- import "{path}" as partial with context %}}'
            f"{{% if partial.{section} is defined %}}{section}:{{{{ partial.{section}() }}}}{{% endif %}}"
        )
        text = env.from_string(source).render(cookiecutter=answers)
        _reject_duplicate_keys(text, path)
        found[path] = (yaml.load(text, Loader=CfnLoader) or {}).get(section) or {}
    return found


def _reject_duplicate_keys(text, path):
    """YAML keeps the last of two equal keys silently; a partial must not define a name twice."""
    names = re.findall(r"^  (\w+):", text, flags=re.MULTILINE)
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, f"{path} defines {sorted(duplicates)} twice"
