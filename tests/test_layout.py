"""The template stays readable: no file of it holds more than MAX_BLOCK_TAGS Jinja block tags
(variants live in partials under templates/, one per concern), and every partial is used."""

import itertools
import re
import shutil
import subprocess

import pytest
from conftest import ROOT, TEMPLATE_DEFAULTS

MAX_BLOCK_TAGS = 30
TEMPLATE_FILES = sorted(
    path
    for folder in ("{{cookiecutter.project_slug}}", "templates", "hooks")
    for path in (ROOT / folder).rglob("*")
    if path.is_file() and "__pycache__" not in path.parts
)


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_file_has_more_than_the_block_tag_limit(path):
    tags = path.read_text(encoding="utf-8").count("{%")
    assert tags <= MAX_BLOCK_TAGS, f"{tags} block tags: split the variants into partials under templates/"


def imported_partials(source):
    """Every partial an import can name: `"stack/vpc/" ~ cookiecutter.vpc ~ ".yaml"` gives one path
    per choice of vpc."""
    for expression in re.findall(r"import (.+?) as \w+", source):
        parts = re.findall(r'"([^"]*)"|cookiecutter\.(\w+)', expression)
        options = [[literal] if literal else TEMPLATE_DEFAULTS[variable] for literal, variable in parts]
        yield from ("".join(combination) for combination in itertools.product(*options))


def test_every_partial_is_imported_and_every_import_exists():
    imported = {name for path in TEMPLATE_FILES for name in imported_partials(path.read_text(encoding="utf-8"))}
    partials = {
        str(path.relative_to(ROOT / "templates"))
        for path in (ROOT / "templates").rglob("*")
        if path.is_file() and path.name != "README.md"
    }
    assert imported, "no import found: the pattern no longer matches the templates"
    assert partials - imported == set(), "partials no file imports"
    assert imported - partials == set(), "imports of partials that do not exist"


def test_the_quick_start_names_the_python_that_pyenv_selects_here():
    """The README's commands call python3.13; under pyenv that name resolves only where a
    .python-version selects a 3.13, so the repository carries one (users without pyenv ignore it)."""
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^(python3\.\d+) tasks\.py ", quick_start, re.MULTILINE)) == {"python3.13"}
    assert (ROOT / ".python-version").read_text().strip() == "3.13"
    pyenv = shutil.which("pyenv")
    installed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True).stdout if pyenv else ""
    if re.search(r"^3\.13\.", installed, re.MULTILINE):  # with pyenv and a 3.13 in it, the name resolves
        found = subprocess.run([pyenv, "which", "python3.13"], cwd=ROOT, capture_output=True, text=True)
        assert found.returncode == 0 and "/versions/3.13." in found.stdout, found.stderr
