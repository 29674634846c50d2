"""fgh_tutorial: a course that builds a fine-grained image hashing system step by step.

The sub-packages follow the data flow; imports only point down this list:

    errors.py    the one family of errors; files.py: atomic writes, file digests      (below everything)
    retrieval/   the code contract, Hamming search, HammingIndex, metrics, LSH/ITQ  (errors, files)
    data/        SynthBirds, real datasets, downloads, transforms and augmentation  (errors, files)
    models/      backbones, hash heads, ExchNet, encoding                  (data, retrieval.codes)
    attention/   channel-mean CAM, grad-cam bridge, SREM                   (models)
    training/    losses, ADSH solver, asymmetric loop, schedules, checkpoints, profiles
    systems.py   the one registry of trainable systems
    runs.py      run folders of the command line; checks.py, what a command is given, checked first
    app/         explorer data side, bundles, figures, widgets
    course/      notebook runner, exercises
    cli.py       ``python -m fgh_tutorial``; reporting.py, how it shows a failure
"""
__version__ = "0.1.0"
