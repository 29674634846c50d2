import numpy as np
import pytest

from fgh_tutorial.course.exercises import CHECKS, SOLUTIONS, check


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_reference_solutions_pass(name):
    assert check(name, SOLUTIONS[name]) == "correct"


@pytest.mark.parametrize("name, wrong", [
    ("00.1", lambda part: []),
    ("01.1", lambda q, d: np.asarray(q) @ np.asarray(d).T),
    ("01.2", lambda q, d, ql, dl: 0.5),
    ("02.1", lambda fmap, size: fmap.mean(1)),
    ("03.1", lambda att, n, s: att.mean((1, 2))),
    ("04.1", lambda parts, anchors, mask: parts),
    ("05.1", lambda ys, yd: 1.0),
    ("06.1", lambda q, d, k: (np.zeros((len(q), k)), np.zeros((len(q), k)))),
    ("07.1", lambda dist, rel, k: rel[np.argsort(dist, kind="stable")[:k]].mean()),
])
def test_wrong_answers_fail(name, wrong):
    with pytest.raises(AssertionError):
        check(name, wrong)


def test_unknown_exercise():
    with pytest.raises(KeyError, match="no exercise"):
        check("99.9", SOLUTIONS["01.1"])
