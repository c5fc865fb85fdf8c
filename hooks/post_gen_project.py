"""Remove what the chosen options do not use, then print the Atlas-side steps.

Everything a mode does not need is listed once, in PRUNE; nothing else deletes files.
The answers are rendered once, as data, into ANSWERS; tests render this file,
import it and call its functions directly.
"""

import json
import shutil
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

SCRAM = ANSWERS["auth_mode"] == "scram"
PACKAGE = Path("src") / ANSWERS["package_name"]

# path (relative to the project) -> keep it?
PRUNE = {
    PACKAGE / "credentials.py": SCRAM,
    Path("tests") / "test_credentials.py": SCRAM,
}

# The Atlas-side steps for these answers, selected and filled in from cookiecutter.json's
# _atlas_steps table when the project was rendered (the README shows the same steps).
STEPS_FILE = Path("tools") / "atlas_steps.json"


def prune(project_dir, table=PRUNE):
    """Delete every path whose keep-condition is false; return the deleted paths."""
    removed = []
    for path, keep in table.items():
        target = Path(project_dir) / path
        if keep or not target.exists():
            continue
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
        removed.append(path)
    return removed


def fill(text, values):
    """Put the answers into a step's {token}s (the tokens are the table's, values from the file)."""
    for token, value in values.items():
        text = text.replace("{" + token + "}", value)
    return text


def next_steps(answers, table):
    """The message printed after generation: each Atlas-side step's title, in order."""
    lines = [f"Created {answers['project_slug']}/. Try it locally first: make install && make test && make invoke"]
    lines.append(
        f"Then, for {answers['network_mode']} + {answers['auth_mode']} "
        '(README.md, "Atlas-side steps"; after a deploy `make atlas-steps` fills in the values):'
    )
    titles = [fill(step["title"], table["values"]) for step in table["steps"]]
    lines += [f"  {number}. {title}" for number, title in enumerate(titles, start=1)]
    return "\n".join(lines)


def main():
    prune(Path.cwd())
    print(next_steps(ANSWERS, json.loads((Path.cwd() / STEPS_FILE).read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
