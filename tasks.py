"""Set-up and everyday commands for the template itself; needs only Python 3.13+.

    python3.13 tasks.py demo    render the default project and let it answer real requests locally
    python3.13 tasks.py test    the template's whole test suite (installs what it needs first)
    python3.13 tasks.py bench   the side-by-side benchmarks (docs/benchmarks.md)
    python3.13 tasks.py lint    ruff on the template's own code

Each command creates or refreshes what it needs: `.venv` (requirements/dev.txt and bench.txt) and,
for the infrastructure checks, `.tools/checkov` and `.tools/sam`, kept apart because their pins conflict.
An environment is rebuilt only when its requirements file changes. Extra arguments after `test`
go to pytest, e.g. `python3.13 tasks.py test -m "not slow" -k validation`.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TOOLS = ROOT / ".tools"
REQUIREMENTS = ROOT / "requirements"
# one environment for the tests and the benchmarks, so switching between them reinstalls nothing
VENV_REQUIREMENTS = (REQUIREMENTS / "dev.txt", REQUIREMENTS / "bench.txt")
# tool name -> (its virtual environment, its requirements file, the executable)
TOOL_ENVS = {
    "CHECKOV": (TOOLS / "checkov", REQUIREMENTS / "checkov.txt", "checkov"),
    "SAM": (TOOLS / "sam", REQUIREMENTS / "sam.txt", "sam"),
}


def say(message):
    print(f"[tasks] {message}", flush=True)


def run(*command, **kwargs):
    return subprocess.run([str(part) for part in command], check=True, **kwargs)


def ensure_venv(venv, *requirement_files):
    """Create `venv` with these requirements, unless it already matches them."""
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in requirement_files)).hexdigest()
    stamp = venv / ".requirements.sha256"
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    say(f"installing {', '.join(path.name for path in requirement_files)} into {venv.relative_to(ROOT)}")
    shutil.rmtree(venv, ignore_errors=True)
    run(sys.executable, "-m", "venv", venv)
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "pip")
    for path in requirement_files:
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", path)
    stamp.write_text(digest)
    return python


def tool_environment(*tools):
    """The environment the tests run in: these tools' paths set and this Python first on PATH."""
    env = dict(os.environ)
    for variable in tools:
        venv, requirements, executable = TOOL_ENVS[variable]
        ensure_venv(venv, requirements)
        env.setdefault(variable, str(venv / "bin" / executable))
    # `sam build` looks for the runtime's interpreter (python3.13) on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(VENV / "bin"), env.get("PATH", "")])
    return env


def demo(_args):
    python = ensure_venv(VENV, *VENV_REQUIREMENTS)
    output = ROOT / "build" / "demo"
    shutil.rmtree(output, ignore_errors=True)
    run(python, "-m", "cookiecutter", "--no-input", "--output-dir", output, ROOT)
    project = output / "orders-service"
    say(f"rendered {project.relative_to(ROOT)}; invoking it under the Lambda runtime client")
    events = ["health.json", "post-item.json", "get-item.json", "malformed-body.json", "unknown-route.json"]
    run(python, "tools/invoke.py", *(f"events/{name}" for name in events), cwd=project)
    return 0


def test(args):
    python = ensure_venv(VENV, *VENV_REQUIREMENTS)
    env = tool_environment(*TOOL_ENVS)
    # loadgroup: tests marked with one xdist_group run on one worker (the rendered suites)
    command = [python, "-m", "pytest", "-n", "auto", "--dist", "loadgroup", *args]
    say(" ".join(str(part) for part in command))
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def bench(args):
    python = ensure_venv(VENV, *VENV_REQUIREMENTS)
    env = tool_environment("SAM")  # for the deployment artifact's size
    return subprocess.run([python, "-m", "bench", *args], cwd=ROOT, env=env).returncode


def lint(_args):
    python = ensure_venv(VENV, *VENV_REQUIREMENTS)
    # --config: the rendered project's pyproject.toml is a template, not a setting for this repo
    run(python, "-m", "ruff", "check", "--config", "pyproject.toml", ".")
    run(python, "-m", "ruff", "format", "--check", "--config", "pyproject.toml", ".")
    return 0


COMMANDS = {"demo": demo, "test": test, "bench": bench, "lint": lint}


def main(argv):
    if sys.version_info < (3, 13):  # noqa: UP036 - says so clearly on an older Python
        print(f"ERROR: python: tasks.py needs Python 3.13 or newer, not {sys.version.split()[0]}", file=sys.stderr)
        return 2
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except subprocess.CalledProcessError as error:
        print(f"ERROR: {argv[0]}: {' '.join(error.cmd)} exited with {error.returncode}", file=sys.stderr)
        return error.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
