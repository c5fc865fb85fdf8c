"""Where things are in this project, found on disk so no module needs template variables.

ROOT, SRC, EVENTS    the project folder, src/ (Lambda's task root) and events/
PACKAGE, HANDLER     the function package's name and its Lambda handler string
SCRAM                True when the project authenticates with SCRAM (it ships credentials.py)
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "src"
EVENTS = ROOT / "events"
PACKAGE = next(SRC.glob("*/app.py")).parent.name
HANDLER = f"{PACKAGE}.app.handler"
SCRAM = (SRC / PACKAGE / "credentials.py").exists()
