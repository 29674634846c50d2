"""The run layer: run folders, what the command line trains, evaluates, queries and encodes.

Its modules, each importing only those listed before it here:

    lock.py       one writer per run folder or output (``DIR/.lock``, ``.NAME.lock``)
    manifest.py   the record of a run folder: config.json first, manifest.json (every file's digest) last
    checks.py     what a command is given, checked before any work: outputs, sizes, data, image files
    options.py    the arguments of ``train``, declared once (``OPTIONS``): flags, defaults, help, checks
    config.py     ``RunConfig``, the typed settings of a run and what it derives; config.json to and fro
    folder.py     a run folder read back: ``load_run``, ``run_database``, ``evaluate_run``, ``query_run``
    train.py      ``train_run``: a run trained into its folder
    encoding.py   ``encode_folder``: a folder of images into one codes file, shard by shard (Ray)

They import the layers below (``errors``, ``files``, ``retrieval``, ``data``, ``models``,
``training``, ``systems``); ``app`` and ``cli`` import them. This file imports nothing: import
from the modules (``from fgh_tutorial.runs.train import train_run``).
"""
