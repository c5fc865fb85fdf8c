"""Size of the deployment artifact `sam build` makes for a rendered project."""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.console import say
from bench.project import ROOT


def find_sam():
    """(path to sam or None, where it was looked for)."""
    candidates = [os.environ.get("SAM"), str(ROOT / ".tools" / "sam" / "bin" / "sam"), shutil.which("sam")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate, None
    return None, "no sam found ($SAM, .tools/sam/bin/sam, PATH); `python3.13 tasks.py bench` installs it"


def build_size(sam, project_dir, build_dir):
    """sam build into build_dir, then the function folder's size unzipped and zipped."""
    shutil.rmtree(build_dir, ignore_errors=True)
    env = dict(os.environ)
    # sam build looks for the runtime's interpreter (python3.13) on PATH: put this one first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    completed = subprocess.run(
        [sam, "build", "--build-dir", str(build_dir)],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        return {"error": "sam build failed: " + " / ".join(tail)}
    functions = [child for child in Path(build_dir).iterdir() if child.is_dir()]
    sizes = {}
    for function in functions:
        files = [path for path in function.rglob("*") if path.is_file()]
        unzipped = sum(path.stat().st_size for path in files)
        with tempfile.TemporaryDirectory() as scratch:
            archive = Path(scratch) / "function.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
                for path in files:
                    bundle.write(path, path.relative_to(function))
            zipped = archive.stat().st_size
        sizes[function.name] = {"unzipped_mb": unzipped / 2**20, "zipped_mb": zipped / 2**20, "files": len(files)}
    if len(sizes) == 1:
        return next(iter(sizes.values()))
    return {
        "unzipped_mb": sum(size["unzipped_mb"] for size in sizes.values()),
        "zipped_mb": sum(size["zipped_mb"] for size in sizes.values()),
        "files": sum(size["files"] for size in sizes.values()),
        "functions": sizes,
    }


def measure(sam, mode, project_dir, build_dir):
    """build_size() for this auth mode's project, with its stage lines."""
    say(f"{mode}: sam build (deployment artifact size)")
    size = build_size(sam, project_dir, build_dir)
    say(
        f"  {mode}: "
        + (size.get("error") or f"{size['unzipped_mb']:.1f} MB unzipped, {size['zipped_mb']:.1f} MB zipped")
    )
    return size
