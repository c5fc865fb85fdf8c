"""Where things are in this project, found on disk so no module needs template variables.

ROOT, SRC, EVENTS    the project folder, src/ (Lambda's task root) and events/
PACKAGE, HANDLER     the function package's name and its Lambda handler string

The auth mode, and what the tests start for it, is tests/support/auth.py's.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "src"
EVENTS = ROOT / "events"
PACKAGE = next(SRC.glob("*/app.py")).parent.name
HANDLER = f"{PACKAGE}.app.handler"
