"""fgh_tutorial: a course that builds a fine-grained image hashing system step by step.

The layers follow the data flow. The list starts at the bottom layer: a module imports only from
its own line and the lines before it (above it in this list), never from a line after it
(``tests/test_layers.py`` checks every import against this list). Each sub-package's docstring
says what it holds and what it imports.

    errors.py files.py
                 the one family of errors; atomic writes and file digests (below everything)
    retrieval/   the code contract, Hamming search (compiled CPU kernels, Triton on a GPU), HammingIndex
                 and its sharded Ray version, metrics, bit balance, LSH/ITQ
    data/        SynthBirds, real datasets and folders, image files, downloads, transforms, loaders
    models/      backbones, hash heads, ExchNet, DNNH, two-pyramid, DCGAN, encoding, devices
    attention/   channel-mean CAM, grad-cam bridge, SREM and the erasing controls
    training/    losses, the ADSH solver, the trainers, schedules, checkpoints, profiles, cached models
    systems.py   the one registry of trainable systems
    runs/        the run layer: run folders (lock, manifest), the checks a command's input gets before
                 any work, train's options declared once and RunConfig, train / evaluate / query,
                 encoding a folder
    app/         explorer data side, bundles, figures, widgets
    course/      notebook runner, exercises, experiments, fair tests and their sweeps, timing
    cli/         ``python -m fgh_tutorial``: the parser, the commands, how a failure is shown
"""
__version__ = "0.1.0"
