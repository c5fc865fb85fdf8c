"""Start the built function as Lambda's initialisation does, on the runtime's own Python.

    make import-check         (after `make build`; RUNTIME_PYTHON=/path/to/python3.x to choose)
    python tools/import_check.py --architecture arm64 --package orders_service \
        --env AWS_REGION=us-east-1 --env POWERTOOLS_SERVICE_NAME=orders-service ...

Every module of the package compiles and imports with the settings given (start-up reads and
checks them), and the native modules the build ships for the function's architecture load:
pymongo's and bson's C extensions, which pymongo would otherwise replace with pure Python without
a word. They cannot load on a machine of another architecture, so there the check stops with a
message saying so rather than pass without having loaded them: run it on a machine of the
function's architecture (CI does, on a runner of that architecture) or build for this one.
"""

import argparse
import compileall
import os
import platform
import subprocess
import sys
from pathlib import Path

BUILD = Path(".aws-sam") / "build" / "Function"
# Lambda's architecture names -> what platform.machine() says on such a machine
MACHINES = {"arm64": {"aarch64", "arm64"}, "x86_64": {"x86_64", "amd64"}}
PROBE = (
    "import importlib, sys\n"
    "importlib.import_module(sys.argv[1] + '.app')\n"
    "import bson, pymongo\n"
    "loaded = {'bson': bson.has_c(), 'pymongo': pymongo.has_c()}\n"
    "missing = ', '.join(name for name, native in loaded.items() if not native)\n"
    "if missing:\n"
    "    sys.exit('ERROR: import-check: the native modules of ' + missing + ' did not load')\n"
    "print('import-check: the function started; the native modules of bson and pymongo loaded')\n"
)


def fail(message: str) -> int:
    print(f"ERROR: import-check: {message}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    summary = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(prog="tools/import_check.py", description=summary)
    parser.add_argument("--architecture", required=True, choices=sorted(MACHINES))
    parser.add_argument("--package", required=True)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    machine = platform.machine().lower()
    if machine not in MACHINES[args.architecture]:
        return fail(
            f"the build is for {args.architecture}, but this machine is {machine}: the native "
            f"modules it ships cannot load here. Run it on an {args.architecture} machine (CI runs "
            "it on one), or generate the project for this machine's architecture"
        )
    if not (BUILD / args.package).is_dir():
        return fail(f"{BUILD / args.package} does not exist: run `make build` first")
    if not compileall.compile_dir(BUILD / args.package, quiet=1):
        version = platform.python_version()
        return fail(f"a module of {args.package} does not compile on Python {version}")
    env = dict(os.environ) | dict(pair.split("=", 1) for pair in args.env)
    env["PYTHONPATH"] = str(BUILD.resolve())
    probe = [sys.executable, "-c", PROBE, args.package]
    started = subprocess.run(probe, cwd=BUILD, env=env, check=False)
    return started.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
