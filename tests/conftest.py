"""Fixtures shared by the tests, and the markers of the notebooks.

Markers (registered in pyproject.toml): ``slow`` (a test of more than a few seconds on 2 cores),
``notebooks`` (nbval over ``notebooks/``: added below to every notebook cell collected), ``browser``
(the explorer in chromium) and ``gpu`` (the Triton kernels; on a CPU they run under Triton's
interpreter). ``make test-fast`` leaves out ``slow``, ``notebooks`` and ``browser``; ``make test``
runs everything.
"""
from dataclasses import replace

import pytest

# A SynthBirds profile of seconds: 2 training, 1 query and 1 validation image per class at 32 px.
SMALL = dict(per_class=2, per_class_query=1, per_class_val=1, image_size=32)


def _use_small_profile(patch: pytest.MonkeyPatch, fields: dict):
    from fgh_tutorial.training import profiles

    small = replace(profiles.PROFILES["cpu"], **{**SMALL, **fields})
    patch.setitem(profiles.PROFILES, "cpu", small)
    return small


@pytest.fixture
def small_profile(monkeypatch):
    """``small_profile(**fields)`` makes the ``cpu`` profile (the command line's default) the small
    profile above, with ``fields`` overridden, for one test; returns it."""
    return lambda **fields: _use_small_profile(monkeypatch, fields)


@pytest.fixture(scope="module")
def small_profile_module():
    """``small_profile`` for a whole module, e.g. for a run trained once by a module fixture and
    read by the module's tests (which must see the same profile, or the data looks changed)."""
    patch = pytest.MonkeyPatch()
    yield lambda **fields: _use_small_profile(patch, fields)
    patch.undo()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":  # a cell collected by nbval
            item.add_marker(pytest.mark.notebooks)
