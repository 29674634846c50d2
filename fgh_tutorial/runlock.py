"""One writer per run folder: ``DIR/.lock``, created with O_CREAT | O_EXCL and holding the
writer's process id and host, removed when the writer finishes.

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

LOCK = ".lock"


class RunLocked(RuntimeError):
    """Another process is writing the run folder."""


def lock_holder(folder) -> dict | None:
    """{"pid", "host", "since"} of the lock on ``folder``, or None when it is not locked."""
    try:
        info = json.loads((Path(folder) / LOCK).read_text())
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
    """``with RunLock(folder):`` holds the folder's lock for the block."""

    def __init__(self, folder):
        self.path = Path(folder) / LOCK

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = lock_holder(self.path.parent)
                if is_stale(info):  # its writer died: move it aside (one taker wins), then retry
                    try:
                        os.replace(self.path, self.path.with_name(f"{LOCK}.stale.{os.getpid()}"))
                        os.unlink(self.path.with_name(f"{LOCK}.stale.{os.getpid()}"))
                    except FileNotFoundError:
                        pass
                    continue
                raise RunLocked(describe_lock(self.path.parent, info)) from None
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}, f)
            return self
        raise RunLocked(describe_lock(self.path.parent, lock_holder(self.path.parent)))

    def release(self) -> None:
        info = lock_holder(self.path.parent)
        if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def describe_lock(folder, info) -> str:
    who = (f"process {info['pid']} on {info.get('host', '?')}" if info and "pid" in info else "another process")
    return (f"{folder} is being written by {who} (lock file {Path(folder) / LOCK}); wait for it to finish, or, if "
            "no training is running there any more, delete the lock file")


__all__ = ["LOCK", "RunLock", "RunLocked", "describe_lock", "is_stale", "lock_holder"]
