"""The command line, ``python -m fgh_tutorial COMMAND`` (``fgh_tutorial/__main__.py``), the top layer:

    parser.py     the arguments of every command (``train``'s from the table ``runs.options.OPTIONS``)
                  and ``main(argv)``, which parses them and runs the command
    commands.py   what each command does: train, evaluate, query, encode, verify, explore, course
    reporting.py  how a failure is shown: the ``fgh_tutorial.errors`` family and the system's and the
                  environment's errors as one line ``error: ...`` (exit status 2), Ctrl-C (130), a bug
                  with its traceback in a log file (1)

It imports every layer below it: ``errors``, ``files``, ``data``, ``systems``, ``training``
(``train`` under torchrun), the run layer ``runs``, ``app`` (``explore``) and ``course``; the
commands import what they need when they run. This file imports ``main``.
"""
from .parser import main

__all__ = ["main"]
