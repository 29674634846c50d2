"""Exercises of notebook 00 (SynthBirds)."""
from __future__ import annotations

from ...data.synthetic import CLASSES, NUM_CLASSES, PART_NAMES, attribute_differences


def _check_one_part_pairs(fn):
    for part in PART_NAMES:
        want = sorted((a, b) for a in range(NUM_CLASSES) for b in range(a + 1, NUM_CLASSES)
                      if attribute_differences(a, b) == [part])
        got = sorted(tuple(sorted(p)) for p in fn(part))
        extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
        assert got == want, (f"pairs differing only in the {part}: expected {len(want)} pairs, got {len(got)}"
                             + (f"; e.g. {extra[0]} differs in {attribute_differences(*extra[0])}" if extra else "")
                             + (f"; missing e.g. {missing[0]}" if missing else "")
                             + ("; each pair once, as (a, b) with a < b" if not extra and not missing else ""))


def _one_part_pairs(part):
    k = PART_NAMES.index(part)
    return [(a, b) for a in range(NUM_CLASSES) for b in range(a + 1, NUM_CLASSES)
            if sum(x != y for x, y in zip(CLASSES[a], CLASSES[b])) == 1 and CLASSES[a][k] != CLASSES[b][k]]


CHECKS = {"00.1": (_check_one_part_pairs, "part -> list of (class a, class b) that differ only in that part")}
SOLUTIONS = {"00.1": _one_part_pairs}
