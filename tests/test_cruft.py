"""cruft can create a project from the template, check it, and bring a template change in."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

CRUFT = [sys.executable, "-m", "cruft"]
GIT_IDENTITY = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.invalid"]


def git(*args, cwd):
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory):
    """The template as it is in this working tree, committed to a throwaway git repository."""
    repo = tmp_path_factory.mktemp("template")
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=ROOT).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "template", cwd=repo)
    return repo


def cruft(*args, cwd):
    return subprocess.run([*CRUFT, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cruft_create_check_and_update(template_repo, tmp_path):
    answers = {"project_name": "Cruft Orders", "auth_mode": "scram", "network_mode": "peering"}
    created = cruft(
        "create", str(template_repo), "--no-input", "--output-dir", str(tmp_path),
        "--extra-context", json.dumps(answers), cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    project = tmp_path / "cruft-orders"
    state = json.loads((project / ".cruft.json").read_text())
    assert {key: state["context"]["cookiecutter"][key] for key in answers} == answers
    recorded = json.loads((project / ".cookiecutter.json").read_text())
    assert recorded["auth_mode"] == "scram" and recorded["project_slug"] == "cruft-orders"

    checked = cruft("check", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "up to date" in checked.stdout

    readme = Path(template_repo, "{{cookiecutter.project_slug}}", "README.md")
    readme.write_text(readme.read_text() + "\nA line the template added later.\n")
    git("commit", "-q", "-am", "template change", cwd=template_repo)
    assert cruft("check", cwd=project).returncode != 0

    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "project", cwd=project)
    updated = cruft("update", "--skip-apply-ask", "--allow-untracked-files", cwd=project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "A line the template added later." in (project / "README.md").read_text()
    assert cruft("check", cwd=project).returncode == 0


def test_a_linked_project_shows_no_diff(template_repo, tmp_path):
    """A project made with plain cookiecutter, then linked: `cruft diff` is empty, so the first `cruft update`
    brings only template changes (a `_commit` in `.cookiecutter.json` used to show as a diff at once)."""
    made = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(template_repo),
         "project_name=Linked Orders", "auth_mode=scram"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    project = tmp_path / "linked-orders"
    recorded = (project / ".cookiecutter.json").read_text()
    linked = cruft("link", "--no-input", "--extra-context", recorded, str(template_repo), cwd=project)
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]["auth_mode"] == "scram"
    diffed = cruft("diff", "--exit-code", cwd=project)
    assert diffed.returncode == 0, diffed.stdout + diffed.stderr
    assert "diff --git" not in diffed.stdout  # it renders the template, so the post-gen hook's message shows
    assert "_commit" not in json.loads(recorded)
