"""Exercises of every notebook, with checkers and reference solutions, one module per notebook.

In a notebook: write your function, then ``check("03.1", my_function)``. It prints ``correct``
or raises an AssertionError that names what differs from the library (which case, which value,
and the usual cause). ``SOLUTIONS`` holds one reference answer per exercise; the test suite
checks them, and that typical wrong answers fail with such a message.

    00 data.py        01 hashing.py     02 attention.py   03 erasing.py
    04 exchange.py    05 asymmetric.py  06 packed.py      07 explorer.py
    08 designs.py     09 fair.py
"""
from __future__ import annotations

from . import asymmetric, attention, data, designs, erasing, exchange, explorer, fair, hashing, packed

_MODULES = (data, hashing, attention, erasing, exchange, asymmetric, packed, explorer, designs, fair)
CHECKS = {k: v for m in _MODULES for k, v in m.CHECKS.items()}
SOLUTIONS = {k: v for m in _MODULES for k, v in m.SOLUTIONS.items()}


def check(exercise: str, answer) -> str:
    """Run the checker of ``exercise`` on ``answer``; prints and returns 'correct'."""
    if exercise not in CHECKS:
        raise KeyError(f"no exercise {exercise!r}; there are {sorted(CHECKS)}")
    CHECKS[exercise][0](answer)
    print(f"exercise {exercise}: correct")
    return "correct"


__all__ = ["CHECKS", "SOLUTIONS", "check"]
