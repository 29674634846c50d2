"""fgh_tutorial: a course that builds a fine-grained image hashing system step by step.

The layers follow the data flow and are listed from the bottom up: a module imports from its own
line and the lines above it, never from a line below (``tests/test_layers.py`` checks it against
this list). Each sub-package's docstring says what it imports.

    retrieval/   the code contract, Hamming search (compiled CPU kernels, Triton on a GPU), HammingIndex
                 and its sharded Ray version, metrics, bit balance, LSH/ITQ
    data/        SynthBirds, real datasets and folders, image files, downloads, transforms, loaders
    models/      backbones, hash heads, ExchNet, DNNH, two-pyramid, DCGAN, encoding, devices
    attention/   channel-mean CAM, grad-cam bridge, SREM
    training/    losses, the ADSH solver, the trainers, schedules, checkpoints, profiles, cached models
    systems.py   the one registry of trainable systems
    runlock.py manifest.py run_options.py runs.py encode_folder.py errors.py
                 run folders of the command line: lock, manifest, options, train / evaluate / query,
                 encoding a folder, error messages
    app/         explorer data side, bundles, figures, widgets
    course/      notebook runner, exercises, experiments and their sweeps, timing
    cli.py       ``python -m fgh_tutorial``

The library and the commands that train, evaluate, query, verify and encode need only the core
dependencies; the figures and widgets of ``app`` and running the notebooks need the ``course``
extra (matplotlib, ipywidgets, JupyterLab, nbclient ...).
"""
__version__ = "0.1.0"
