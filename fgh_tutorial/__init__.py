"""fgh_tutorial: a course that builds a fine-grained image hashing system step by step.

The layers follow the data flow and are listed from the bottom up: a module imports from its own
line and the lines above it, never from a line below (``tests/test_layers.py`` checks it against
this list). Each sub-package's docstring says what it imports.

    errors.py files.py
                 the one family of errors; atomic writes and file digests (below everything)
    retrieval/   the code contract, Hamming search (compiled CPU kernels, Triton on a GPU), HammingIndex
                 and its sharded Ray version, metrics, bit balance, LSH/ITQ
    data/        SynthBirds, real datasets and folders, image files, downloads, transforms, loaders
    models/      backbones, hash heads, ExchNet, DNNH, two-pyramid, DCGAN, encoding, devices
    attention/   channel-mean CAM, grad-cam bridge, SREM and the erasing controls
    training/    losses, the ADSH solver, the trainers, schedules, checkpoints, profiles, cached models
    systems.py   the one registry of trainable systems
    runlock.py manifest.py run_options.py checks.py runs.py encode_folder.py
                 run folders of the command line: lock, manifest, options, the checks a command's
                 input gets before any work, train / evaluate / query, encoding a folder
    app/         explorer data side, bundles, figures, widgets
    course/      notebook runner, exercises, experiments, fair tests and their sweeps, timing
    reporting.py cli.py
                 ``python -m fgh_tutorial`` and how it shows a failure
"""
__version__ = "0.1.0"
