"""The course: the notebook runner (``runner``: execute notebooks, record their key numbers,
export figures), exercises with checked solutions (``exercises``, one module per notebook), the
experiments of notebooks 03-05 (``experiments``) and their multi-seed sweeps (``sweeps``), and
timing helpers (``timing``). May import every layer below it; only the command line imports it.
"""
from .runner import record

__all__ = ["record"]
