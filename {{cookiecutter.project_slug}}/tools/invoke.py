"""Invoke the function locally without Docker: python tools/invoke.py events/health.json [...]

See tests/support/invoke.py for what it starts and the options it takes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.invoke import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
