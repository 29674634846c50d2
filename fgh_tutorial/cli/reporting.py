"""How the command line reports a failure, for every command (``run_command`` wraps each handler):

    an expected failure   an error of the package's family (``errors.FghError``: bad options,
                          bad data, a missing or damaged file, a run folder in use or holding
                          another run), the system's own errors (no permission), and the
                          environment's (no space, out of memory, no network, see
                          ``errors.environment_failure``): one line ``error: ...`` on stderr, exit status 2
    Ctrl-C                one line, exit status 130 (a training run continues with --resume)
    anything else (a bug) one line naming the log file that holds the traceback, exit status 1
    --debug / FGH_DEBUG=1 the traceback too

Library warnings are printed as one line ``warning: ...``.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import traceback
import warnings

from ..errors import FghError, environment_failure

EXIT_USER, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 130


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line. A DataLoader worker's error carries the worker's
    traceback in its message: the original message is its last line."""
    text = str(err).strip() or type(err).__name__
    if "Original Traceback" in text or "Traceback (most recent call last)" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = re.sub(r"^[\w.]+(Error|Exception|Warning): ", "", last.strip())
    return " ".join(text.split())


def user_message(err: BaseException) -> str | None:
    """The one-line message of an expected failure, or None for a bug. Plain ValueErrors and
    OSErrors (of Python, numpy, PIL) count as expected: they are about the input."""
    if isinstance(err, FghError):
        return one_line(err)
    env = environment_failure(err)
    if env is not None:
        return one_line(env)
    if isinstance(err, OSError) and err.strerror and err.filename:  # the system's own errors: no permission, ...
        return f"{err.filename}: {err.strerror}"
    if isinstance(err, (ValueError, OSError)):
        return one_line(err)
    return None


def write_log(err: BaseException, argv=None) -> str:
    """Write the traceback of ``err`` with the command and versions to a temporary file; its path."""
    import platform

    import torch

    fd, path = tempfile.mkstemp(prefix="fgh_tutorial-error-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(f"command: python -m fgh_tutorial {' '.join(argv or sys.argv[1:])}\n")
        f.write(f"python {platform.python_version()}, torch {torch.__version__}, {platform.platform()}\n\n")
        f.write("".join(traceback.format_exception(type(err), err, err.__traceback__)))
    return path


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {one_line(message) if isinstance(message, Warning) else message}", file=sys.stderr)


def run_command(handler, args, debug: bool = False, argv=None) -> int:
    """Run one command's handler with the failure reporting described above."""
    debug = debug or os.environ.get("FGH_DEBUG", "") not in ("", "0")
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return handler(args)
        except KeyboardInterrupt:
            if debug:
                traceback.print_exc()
            print("interrupted (an interrupted training run continues from its last checkpoint with --resume)",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as err:  # noqa: BLE001 - every failure ends here, reported as described above
            if debug:
                traceback.print_exc()
            message = user_message(err)
            if message is not None:
                print(f"error: {message}", file=sys.stderr)
                return EXIT_USER
            try:
                where = f"the full report is in {write_log(err, argv)}"
            except OSError:
                where = "no report could be written"
            print(f"error: unexpected {type(err).__name__}: {one_line(err)[:300]} ({where}; rerun with --debug "
                  "to see the traceback)", file=sys.stderr)
            return EXIT_BUG


__all__ = ["EXIT_BUG", "EXIT_INTERRUPTED", "EXIT_USER", "one_line", "run_command", "user_message", "write_log"]
