"""Training subprocess: `python -m ftlib.targets.huggingface.runner RUN_DIR`.

Holds an exclusive flock on RUN_DIR/runner.lock for the whole run, so any process can tell a live run (lock taken)
from a dead one (lock free, state.json still "running"). Imports nothing heavy before the lock is held.

Exit codes: 0 succeeded, 1 failed, 2 usage, 3 another runner holds the run, 143 cancelled by SIGTERM, 130 by SIGINT.
The user's terminal gets progress lines and at most one error line; tracebacks and library logs go to RUN_DIR/log.txt.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from ftlib.jsonfile import write_json_atomic

EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 1, 2, 3
LOCK_NAME, STATE_NAME, LOG_NAME = "runner.lock", "state.json", "log.txt"


class Cancelled(BaseException):
    """Raised from the signal handler so training unwinds (BaseException: no `except Exception` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Cancelled(signum)


def _is_main_rank() -> bool:
    """Under `accelerate launch` every rank runs this module; only rank 0 owns the lock and the run's files."""
    return os.environ.get("RANK", "0") == "0"


def take_lock(run_dir: Path) -> int | None:
    """Exclusive non-blocking flock on run_dir/runner.lock; the fd (kept open for the run) or None if held."""
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def is_live(run_dir: Path) -> bool:
    """True while a runner holds run_dir's lock (a killed runner's lock is released by the kernel)."""
    try:
        fd = os.open(run_dir / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _write_state(run_dir: Path, state: str, **extra: Any) -> None:
    write_json_atomic(run_dir / STATE_NAME, {"state": state, "pid": os.getpid(), **extra})


def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _route_logs(log_path: Path) -> tuple[logging.Handler, int]:
    """Library logs and warnings go to log.txt, not the terminal (datasets/transformers progress bars off too).

    Returns the handler and the root logger's previous level, to undo it when main() runs inside another program.
    """
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    for var in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ.setdefault(var, "1")
    return handler, previous


def _quiet_libraries() -> None:
    import datasets
    import transformers

    transformers.utils.logging.disable_default_handler()
    transformers.utils.logging.enable_propagation()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.enable_propagation()  # datasets has no handler of its own: propagation reaches log.txt
    datasets.disable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    """Run the training in RUN_DIR; see the module docstring for exit codes."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ftlib.targets.huggingface.runner RUN_DIR", file=sys.stderr)
        return EXIT_USAGE
    run_dir = Path(args[0]).resolve()
    if not (run_dir / "spec.json").is_file():
        print(f"no spec.json in {run_dir}", file=sys.stderr)
        return EXIT_USAGE
    main_rank = _is_main_rank()
    fd = take_lock(run_dir) if main_rank else -1
    if fd is None:
        print(f"another runner holds {run_dir}", file=sys.stderr)
        return EXIT_LOCKED
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.getsignal(s) for s in signals}
    handler, root_level = _route_logs(run_dir / LOG_NAME)
    log = logging.getLogger("ftlib.runner")
    try:
        for s in signals:
            signal.signal(s, _on_signal)
        if main_rank:
            _write_state(run_dir, "running")
        log.info("runner %d started in %s", os.getpid(), run_dir)
        from ftlib.targets.huggingface import training  # heavy (torch, trl): only once the lock is held

        _quiet_libraries()
        result = training.run_training(run_dir)
        for s in signals:  # the adapter is published: a late signal must not turn success into "cancelled"
            signal.signal(s, signal.SIG_IGN)
        if main_rank:
            _write_state(run_dir, "succeeded", **result)
        log.info("runner succeeded")
        return 0
    except Cancelled as c:
        for s in signals:  # ignore a second signal while recording the cancellation
            signal.signal(s, signal.SIG_IGN)
        log.info("runner cancelled by %s", c)
        if main_rank:
            _write_state(run_dir, "cancelled", signal=str(c))
        print(f"cancelled ({c}); rerun to resume from the last checkpoint", file=sys.stderr)
        return 128 + c.signum
    except Exception as e:
        log.error("runner failed\n%s", traceback.format_exc())
        if main_rank:
            _write_state(run_dir, "failed", error=_one_line(e))
        print(f"training failed: {_one_line(e)} (traceback in {run_dir / LOG_NAME})", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
        logging.captureWarnings(False)
        handler.close()
        if fd >= 0:
            os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
