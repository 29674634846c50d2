"""One writer per run folder: ``DIR/.lock``, created with O_CREAT | O_EXCL and holding the
writer's process id and host, removed when the writer finishes. Any other output is locked the
same way (``output_lock(path)``: ``.NAME.lock`` beside it), so two commands writing one output
never delete each other's work.

A lock left by a process that died (same host, process gone) is stale and taken over; a lock
held by a live process, or by another host (which cannot be checked from here), stops a
second writer with a message that names the holder.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from ..errors import BadFile

LOCK = ".lock"


class RunLocked(BadFile):
    """Another process is writing the run folder (or the output)."""


def lock_holder(folder, name: str = LOCK) -> dict | None:
    """{"pid", "host", "since"} of the lock ``name`` in ``folder``, or None when it is not locked."""
    try:
        info = json.loads((Path(folder) / name).read_text())
        return info if isinstance(info, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written, or damaged: held by someone unknown


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def is_stale(info: dict | None) -> bool:
    return bool(info) and info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) \
        and info["pid"] != os.getpid() and not _alive(info["pid"])


class RunLock:
    """``with RunLock(folder):`` holds the folder's lock for the block (``name``: another lock
    file in that folder, as ``output_lock`` makes)."""

    def __init__(self, folder, name: str = LOCK, what: str | None = None):
        self.path, self.what = Path(folder) / name, what

    def _describe(self, info) -> str:
        return describe_lock(self.path.parent, info, self.path.name, self.what)

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = lock_holder(self.path.parent, self.path.name)
                if is_stale(info):  # its writer died: move it aside (one taker wins), then retry
                    aside = self.path.with_name(f"{self.path.name}.stale.{os.getpid()}")
                    try:
                        os.rename(self.path, aside)
                        os.unlink(aside)
                    except FileNotFoundError:
                        pass
                    continue
                raise RunLocked(self._describe(info)) from None
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}, f)
            return self
        raise RunLocked(self._describe(lock_holder(self.path.parent, self.path.name)))

    def release(self) -> None:
        info = lock_holder(self.path.parent, self.path.name)
        if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def describe_lock(folder, info, name: str = LOCK, what: str | None = None) -> str:
    who = (f"process {info['pid']} on {info.get('host', '?')}" if info and "pid" in info else "another process")
    return (f"{what or folder} is being written by {who} (lock file {Path(folder) / name}); wait for it to finish, "
            f"or, if no {'training' if name == LOCK else 'command'} is running there any more, delete the lock file")


def output_lock(path) -> RunLock:
    """The lock of one output file ``path``: ``.NAME.lock`` in its folder."""
    path = Path(path)
    return RunLock(path.parent, f".{path.name}.lock", str(path))


__all__ = ["LOCK", "RunLock", "RunLocked", "describe_lock", "is_stale", "lock_holder", "output_lock"]
