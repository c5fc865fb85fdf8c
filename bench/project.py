"""Render the template for one auth mode and load the rendered project's own test support.

The benchmark drives every handler through the pieces the rendered project's tests use
(tests/support/: the Lambda Runtime API, the awslambdaric launcher, the counting MongoDB
wire server, the local replica set with and without TLS, and the auth mode's own stand-ins:
tests/support/auth.py's LocalAuth, with for iam the local STS and the servers' MONGODB-AWS side,
for scram the SCRAM users and the counting Secrets Manager). They are loaded by file path under
a name per auth mode, so the two rendered projects never clash with each other or with this
repository's own `tests` folder. A support module that imports a sibling as
`tests.support.<name>` (secretsmanager.py imports lambda_process, replica_set.py imports mongo)
gets its own project's copy, loaded before it: the alias exists only while that module
executes.
"""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
SUPPORT_MODULES = ("project", "mongo", "runtime_api", "lambda_process", "limiter", "replica_set")
# what each auth mode's tests/support/auth.py needs beside it, then auth.py itself (LocalAuth)
AUTH_SUPPORT_MODULES = {"iam": ("sts", "mongodb_aws", "auth"), "scram": ("scram_users", "secretsmanager", "auth")}


@dataclass
class RenderedProject:
    auth_mode: str
    path: Path
    answers: dict
    support: dict[str, ModuleType] = field(default_factory=dict)

    @property
    def src(self) -> Path:
        return self.path / "src"

    @property
    def package(self) -> str:
        return self.answers["package_name"]

    @property
    def handler(self) -> str:
        return f"{self.package}.app.handler"

    def function_environment(self) -> dict[str, str]:
        """The Variables template.yaml gives the function (YAML scalars read as written)."""
        text = (self.path / "template.yaml").read_text(encoding="utf-8")
        block = re.search(r"\n(\s+)Variables:\n((?:\1\s+\S.*\n)+)", text)
        variables = {}
        if block:
            for line in block.group(2).splitlines():
                name, _, value = line.strip().partition(":")
                value = value.strip()
                if value.startswith('"'):
                    value = json.loads(value)
                variables[name] = value
        return variables


def render(auth_mode: str, work: Path) -> RenderedProject:
    """Bake the default answers with this auth mode into work/<auth_mode>/ (fresh each run)."""
    output = work / auth_mode
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-f", "-o", str(output), str(ROOT)]
    completed = subprocess.run([*command, f"auth_mode={auth_mode}"], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"cookiecutter failed for auth_mode={auth_mode}:\n{completed.stderr}")
    (path,) = [child for child in output.iterdir() if child.is_dir()]
    answers = json.loads((path / ".cookiecutter.json").read_text(encoding="utf-8"))
    project = RenderedProject(auth_mode, path, answers)
    for name in SUPPORT_MODULES + AUTH_SUPPORT_MODULES[auth_mode]:
        module_path = path / "tests" / "support" / f"{name}.py"
        project.support[name] = _load(f"rendered_{auth_mode}_support_{name}", module_path, project.support)
    return project


def _load(module_name: str, path: Path, siblings: dict[str, ModuleType]) -> ModuleType:
    """Execute one support module; `tests.support.<sibling>` resolves to siblings meanwhile."""
    if not path.exists():
        raise RuntimeError(f"the rendered project has no {path.relative_to(path.parents[2])}")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses need the module registered while executing
    aliases = {f"tests.support.{name}": sibling for name, sibling in siblings.items()}
    hidden = {alias: sys.modules[alias] for alias in aliases if alias in sys.modules}
    sys.modules.update(aliases)
    try:
        spec.loader.exec_module(module)
    finally:
        for alias in aliases:
            sys.modules.pop(alias, None)
        sys.modules.update(hidden)
    return module
