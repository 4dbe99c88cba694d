"""Run DVC as a subprocess from a flow: DVC alone decides what is stale, the flow only streams what it says.

The stage commands call the `ftlib` CLI, so the interpreter's bin folder goes first on PATH: a worker started
with the venv's python finds the same `dvc` and `ftlib` even when the venv is not activated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

# Environment for every dvc call: telemetry off, no pager or colours in captured output.
_QUIET = {"DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1", "DVC_PAGER": "cat", "NO_COLOR": "1"}
BUSY_MARKERS = ("is busy", "Unable to acquire lock")


class DvcError(RuntimeError):
    """`dvc` exited non-zero; the message carries DVC's own error lines, so the failed task says why."""

    def __init__(self, args: Sequence[str], returncode: int, detail: str) -> None:
        super().__init__(f"`dvc {' '.join(args)}` failed (exit {returncode}):\n{detail}")
        self.returncode = returncode
        self.detail = detail

    @property
    def busy(self) -> bool:
        """Another dvc command holds the workspace lock: the one failure a retry can fix."""
        return any(marker in self.detail for marker in BUSY_MARKERS)


def dvc_env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {**os.environ, **_QUIET, "PATH": f"{bin_dir}{os.pathsep}{path}" if path else bin_dir}


def dvc_executable() -> str:
    beside = Path(sys.executable).parent / "dvc"
    if beside.exists():
        return str(beside)
    found = shutil.which("dvc")
    if not found:
        raise FileNotFoundError("dvc is not installed in this environment; run `make setup` (pip install -e .)")
    return found


def run_dvc(args: Sequence[str], cwd: Path, log: Callable[[str], None] = print) -> str:
    """Run `dvc <args>` in cwd, passing each output line to `log` as it arrives; return the whole output.

    On failure, raise DvcError with DVC's ERROR lines (or the last lines of output when there are none).
    """
    proc = subprocess.Popen(
        [dvc_executable(), *args], cwd=cwd, env=dvc_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    with proc.stdout:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if line.strip():
                log(line)
    returncode = proc.wait()
    if returncode:
        raise DvcError(args, returncode, error_detail(lines))
    return "\n".join(lines)


def error_detail(lines: Sequence[str], tail: int = 15) -> str:
    """DVC's ERROR lines plus the output just before the first one (the failing command's own message)."""
    errors = [i for i, line in enumerate(lines) if line.startswith("ERROR")]
    if not errors:
        return "\n".join(deque((ln for ln in lines if ln.strip()), maxlen=tail))
    first = errors[0]
    context = [ln for ln in lines[max(0, first - tail):first] if ln.strip()]
    return "\n".join([*context[-tail:], *(lines[i] for i in errors)])
