"""The command line's failure reporting, for every command: one line and exit 2 for a user's
error, a log file and exit 1 for a bug, the traceback with --debug, one-line warnings."""
import argparse
import warnings

import pytest
import torch

from fgh_tutorial import cli
from fgh_tutorial.cli import commands
from fgh_tutorial.cli.reporting import one_line, run_command, user_message


def _lines(text):
    return [line for line in text.strip().splitlines() if line.strip()]


def test_a_user_error_is_one_line_with_status_2(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    cases = [
        (["evaluate", "--run", str(tmp_path / "nowhere")], "run folder"),
        (["evaluate", "--run", str(tmp_path / "notes.txt")], "notes.txt is a file, not a run folder"),
        (["query", "--run", str(tmp_path), str(tmp_path / "x.jpg")], "manifest.json is missing"),
        (["train", "--out", str(tmp_path / "r"), "--device", "gpu0"], "device 'gpu0' is not a device name"),
        (["train", "--out", str(tmp_path / "r"), "--dataset", "folder", "--data", str(tmp_path / "none")],
         "does not exist"),
        (["verify", "--data", str(tmp_path / "none")], "no such folder"),
    ]
    if not torch.cuda.is_available():
        cases.append((["train", "--out", str(tmp_path / "r"), "--device", "cuda"], "needs a CUDA GPU"))
    for argv, expected in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(_lines(err)) == 1 and err.startswith("error: ") and expected in err, (argv, err)
        assert "Traceback" not in err


def _failing(exc):
    def handler(args):
        raise exc
    return handler


def test_a_bug_writes_a_log_and_exits_1(capsys):
    code = run_command(_failing(KeyError("bits")), argparse.Namespace(), argv=["train", "--bits", "8"])
    assert code == 1
    err = capsys.readouterr().err
    assert len(_lines(err)) == 1 and err.startswith("error: unexpected KeyError: 'bits' (the full report is in ")
    log = err.split("the full report is in ")[1].split(";")[0]
    text = open(log).read()
    assert "command: python -m fgh_tutorial train --bits 8" in text and "Traceback" in text and "KeyError" in text


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    assert cli.main(["evaluate", "--run", str(tmp_path / "nowhere"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and _lines(err)[-1].startswith("error: ")
    monkeypatch.setenv("FGH_DEBUG", "1")
    assert run_command(_failing(KeyError("x")), None) == 1
    assert "Traceback" in capsys.readouterr().err


def test_interrupt_and_warnings(capsys):
    assert run_command(_failing(KeyboardInterrupt()), None) == 130
    assert _lines(capsys.readouterr().err) == [
        "interrupted (an interrupted training run continues from its last checkpoint with --resume)"]

    def warns(args):
        warnings.warn("the data of runs/x: the files' modification times differ\nsecond line")
        return 0

    assert run_command(warns, None) == 0
    assert _lines(capsys.readouterr().err) == ["warning: the data of runs/x: the files' modification times differ second line"]


def test_messages_of_every_kind_of_failure():
    from fgh_tutorial.data.download import ChecksumError, DownloadError
    from fgh_tutorial.data.images import BadImageError
    from fgh_tutorial.runs.lock import RunLocked

    worker = BadImageError("Caught BadImageError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                           "call last):\n  File \"x.py\", line 1, in f\nfgh_tutorial.data.images.BadImageError: "
                           "a/b.png: cannot decode image (broken data stream)\n")
    assert user_message(worker) == "a/b.png: cannot decode image (broken data stream)"
    assert user_message(OSError(28, "No space left on device", "/runs/x/model.pt")) == \
        "/runs/x/model.pt: no space left on its device (No space left on device); free some space, or write elsewhere"
    assert user_message(PermissionError(13, "Permission denied", "/runs")) == "/runs: Permission denied"
    for err in (ChecksumError("md5"), DownloadError("net"), RunLocked("busy"), ValueError("v"), FileNotFoundError("f")):
        assert user_message(err) == str(err)
    assert "out of memory" in user_message(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried 2 GiB"))
    assert "use --device cpu" in user_message(RuntimeError("CUDA error: no kernel image is available"))
    for bug in (KeyError("k"), RuntimeError("shape mismatch"), TypeError("f() got 2 arguments"), AttributeError("a")):
        assert user_message(bug) is None
    assert one_line(ValueError("a\n  b")) == "a b"


def test_every_command_gets_the_wrapper(monkeypatch, tmp_path, capsys):
    """A command added to the parser later reports through the same wrapper."""
    monkeypatch.setattr(commands, "evaluate", _failing(IndexError("list index out of range")))
    assert cli.main(["evaluate", "--run", str(tmp_path)]) == 1
    assert "unexpected IndexError" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:  # argparse's own errors keep their usage line and status 2
        cli.main(["train", "--bits", "0", "--out", str(tmp_path)])
    assert bad.value.code == 2
