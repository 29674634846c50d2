"""For every command that writes files, a failure injected at each of its writes leaves no
temporary file behind and the output visibly incomplete; the same command then finishes.

A write fails at its rename (``os.replace``: the file is complete) with the process dying there
(``Killed``, not an Exception: nothing on the way out may catch it), or at its flush to disk
(``os.fsync`` of the file: the data is half on disk) with an error of the system (a full disk:
the command ends with one line, exit status 2)."""
import errno
import os
from pathlib import Path

import pytest

from fgh_tutorial.cli import main

from test_faults import _encode, photos, runs  # noqa: F401 - fixtures
from test_reliability import TRAIN, Killed, fast, tiny  # noqa: F401 - fixtures

FROZEN = ["--freeze-backbone", "--epochs", "1"]


def _temporaries(root):
    return [p for p in Path(root).rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".lock")]


def _inject(monkeypatch, root, where, k, kind):
    """Make the k-th ``where`` ("replace" or "fsync") of a file under ``root`` fail with ``kind``;
    returns the list of calls seen."""
    seen = []
    real = getattr(os, where)

    def failing(*args):
        path = Path(args[1]) if where == "replace" else Path(os.readlink(f"/proc/self/fd/{args[0]}"))
        if Path(root) in path.parents and not os.path.isdir(path):
            seen.append(path.name)
            if len(seen) == k:
                if kind is Killed:
                    raise Killed(f"killed while writing {path.name}")
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(*args)

    monkeypatch.setattr(os, where, failing)
    return seen


def _count(monkeypatch, command, root, where):
    with monkeypatch.context() as m:
        seen = _inject(m, root, where, 0, None)
        assert command() == 0
    return len(seen)


COMMANDS = {
    "train": (lambda out, again: main([*TRAIN, *(["--resume"] if again else []), "--out", str(out)]),
              lambda out: (out / "manifest.json").exists()),
    "train --freeze-backbone": (lambda out, again: main([*TRAIN, *FROZEN, *(["--resume"] if again else []),
                                                        "--out", str(out)]),
                                lambda out: (out / "manifest.json").exists()),
}


@pytest.mark.parametrize("name", [*COMMANDS, "encode"])
@pytest.mark.parametrize("where, kind", [("replace", Killed), ("fsync", OSError)])
def test_a_failure_at_any_write_leaves_no_temporary_file(name, where, kind, runs, tmp_path, monkeypatch, capsys,
                                                         fast):
    if name == "encode":
        data = photos(tmp_path / "photos", n=9)

        def command(out, again):
            return _encode(runs[0], data, out.with_suffix(".npz"))

        def complete(out):
            return out.with_suffix(".npz").exists()
    else:
        command, complete = COMMANDS[name]
    writes = _count(monkeypatch, lambda: command(tmp_path / "whole", False), tmp_path / "whole" if name != "encode"
                    else tmp_path, where)
    assert writes >= (5 if name != "encode" else 4)  # every file of the command goes through the atomic writer
    for k in range(1, writes + 1):
        out = tmp_path / f"failed_{k}"
        with monkeypatch.context() as m:
            _inject(m, tmp_path if name == "encode" else out, where, k, kind)
            if kind is Killed:
                with pytest.raises(Killed):
                    command(out, False)
            else:
                assert command(out, False) == 2
                assert "no space left on its device" in capsys.readouterr().err
        assert not _temporaries(tmp_path), (name, where, k)
        assert not complete(out), (name, where, k)  # visibly incomplete
        capsys.readouterr()
        assert command(out, True) == 0, (name, where, k)  # and the command then finishes
        assert complete(out) and not _temporaries(tmp_path)
        capsys.readouterr()
