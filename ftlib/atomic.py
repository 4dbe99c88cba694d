"""All-or-nothing outputs: a file or a whole folder appears complete at its final path, or not at all.

Every writer goes through a temp name unique to the process (two stages writing one output never share a temp
file), fsyncs what it wrote, and renames into place. A folder (split's parquet files and manifest, an export's
JSONL files) is built beside its final path and swapped in with one rename, so a reader, `kill -9` or a crash
sees the previous folder or the new one, never a mix. Temp names left by a killed process are removed by the
next writer of the same output once that process is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


def temp_path(path: Path) -> Path:
    """A hidden sibling of `path`, unique to this process and call: `.<name>.<pid>-<random>.tmp`."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def clean_stale(path: Path) -> None:
    """Remove temp siblings of `path` left by processes that no longer run (a kill -9 mid-write)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)-[0-9a-f]+\.(?:tmp|old)")
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            m = pattern.fullmatch(entry.name)
            if m and int(m[1]) != os.getpid() and not _pid_alive(int(m[1])):
                _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a power cut after os.replace must not bring the old name back)."""
    if sys.platform == "win32":  # directories cannot be opened for fsync there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories; the rename itself is still atomic
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fsync_file(Path(dirpath) / name)
        fsync_dir(Path(dirpath))


@contextmanager
def replacing_path(path: Path) -> Iterator[Path]:
    """Yield a unique temp path to write `path` through; on success it is fsynced and renamed into place.

    On an exception the temp file is removed and `path` keeps its previous bytes (or stays absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = temp_path(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """An open binary file whose bytes appear at `path` only when the block ends without an exception."""
    with replacing_path(path) as tmp, open(tmp, "wb") as fh:
        yield fh


def write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    with replacing_path(path) as tmp:
        tmp.write_bytes(data)
        os.chmod(tmp, mode)


@contextmanager
def replacing_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `path`; on success it replaces `path` whole, in one rename.

    On Linux the swap is one renameat2(RENAME_EXCHANGE), so `path` always exists as the old or the new folder;
    elsewhere (or on a filesystem without it) the old folder is moved aside first, so for an instant it is absent.
    On an exception the temp folder is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = temp_path(path)
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        old = swap_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def swap_dir(new: Path, dest: Path) -> Path | None:
    """Put folder `new` at `dest`; return where the previous `dest` now is (to delete), or None if there was none."""
    if not dest.exists() and not dest.is_symlink():
        os.rename(new, dest)
        return None
    if dest.is_dir() and not dest.is_symlink() and _exchange(new, dest):
        return new  # the names swapped: `new` now holds the old folder
    old = dest.with_name(f".{dest.name}.{os.getpid()}-{secrets.token_hex(4)}.old")
    os.rename(dest, old)
    os.rename(new, dest)
    return old


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):  # glibc < 2.28 or another libc
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


class Staged:
    """A stage's outputs, written under temp names and put in place together by commit().

    Everything is fsynced first, then the renames run back to back, so the files of one stage change within
    microseconds of each other instead of one after another as each finishes; on discard() nothing changes.
    (Files in different folders cannot change in one atomic step: a kill that lands between two of these
    renames leaves some new outputs beside some previous ones; DVC re-runs the stage, whose lock entry was not
    written.)
    """

    def __init__(self) -> None:
        self._files: list[tuple[Path, Path]] = []
        self._dirs: list[tuple[Path, Path]] = []

    def file(self, path: Path) -> Path:
        """A temp path to write `path` through."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path)
        tmp = temp_path(path)
        self._files.append((tmp, path))
        return tmp

    def folder(self, path: Path) -> Path:
        """An empty temp folder that will replace folder `path` whole."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path)
        tmp = temp_path(path)
        tmp.mkdir()
        self._dirs.append((tmp, path))
        return tmp

    def write_bytes(self, path: Path, data: bytes) -> None:
        tmp = self.file(path)
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)

    def commit(self) -> None:
        for tmp, _ in self._files:
            fsync_file(tmp)
        for tmp, _ in self._dirs:
            _fsync_tree(tmp)
        olds = [swap_dir(tmp, dest) for tmp, dest in self._dirs]
        for tmp, dest in self._files:
            os.replace(tmp, dest)
        for parent in {dest.parent for _, dest in self._files + self._dirs}:
            fsync_dir(parent)
        for old in olds:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        self._files, self._dirs = [], []

    def discard(self) -> None:
        for tmp, _ in self._files:
            tmp.unlink(missing_ok=True)
        for tmp, _ in self._dirs:
            shutil.rmtree(tmp, ignore_errors=True)
        self._files, self._dirs = [], []


@contextmanager
def staged() -> Iterator[Staged]:
    """Collect a stage's outputs; they appear together when the block ends, or not at all if it raises."""
    out = Staged()
    try:
        yield out
    except BaseException:
        out.discard()
        raise
    out.commit()
