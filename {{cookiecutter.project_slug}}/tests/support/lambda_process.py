"""The function run by the real runtime interface client (awslambdaric), as Lambda runs it.

    env = lambda_environment(api.address, src_dir, "orders_service.app.handler", {...})
    process = LambdaProcess(env, log_path); process.start()
    process.pid; process.freeze(); process.thaw()  # SIGSTOP / SIGCONT, as Lambda freezes
    process.logs(); process.log_records()          # stdout+stderr; the JSON lines among them
    process.wait(5); process.stop()

lambda_environment() sets what Lambda sets for a function (name, memory, region, task root,
handler) plus fake AWS credentials, and points the shared AWS config files at /dev/null so a
developer's ~/.aws never leaks into a test run. Pass AWS_REGION=None in extra to remove it.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

# Fake AWS credentials ("testing" for each key, as moto expects) and no shared config files: the
# tests never sign as a developer. Built from the names so no line reads like a real key.
FAKE_KEYS = dict.fromkeys(
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"), "testing"
)
FAKE_CREDENTIALS = FAKE_KEYS | {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def lambda_environment(
    runtime_api: str,
    task_root: Path,
    handler: str,
    extra: dict[str, str | None] | None = None,
    *,
    function_name: str = "local-function",
    memory_mb: int = 1024,
    region: str = "us-east-1",
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(task_root),
        "_HANDLER": handler,
        "PYTHONPATH": str(task_root),
        "PYTHONUNBUFFERED": "1",
        **FAKE_CREDENTIALS,
    }
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def json_records(text: str) -> list[dict]:
    """The lines of a log that are JSON objects (Powertools records), in order."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


class LambdaProcess:
    def __init__(self, env: dict[str, str], log_path: Path, python: str = sys.executable) -> None:
        self.env = env
        self.log_path = Path(log_path)
        self.python = python
        self._process: subprocess.Popen | None = None

    def start(self) -> "LambdaProcess":
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self.python, "-m", "awslambdaric", self.env["_HANDLER"]],
                env=self.env,
                cwd=self.env["LAMBDA_TASK_ROOT"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        return self._process.pid

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def wait(self, timeout: float) -> int | None:
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.thaw()
            self._process.terminate()
            if self.wait(5) is None:
                self._process.kill()
                self._process.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict]:
        """The log lines that are JSON objects (Powertools records), in order."""
        return json_records(self.logs())
