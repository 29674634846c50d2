"""fgh_tutorial: a course that builds a fine-grained image hashing system step by step.

Modules, in the order data flows: ``data`` (SynthBirds, real datasets) -> ``backbones`` and
``heads`` (the hashing model) -> ``losses`` and ``train`` -> ``encode`` -> ``hamming`` (packed
codes, top-k) -> ``metrics`` (mAP, precision, PR). ``baselines`` (LSH, ITQ), ``viz`` (figures),
``exercises``, ``profiles`` and ``course`` support the notebooks.
"""
__version__ = "0.1.0"
