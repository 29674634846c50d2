"""The course: the notebook runner (``runner``: execute notebooks, record their key numbers,
export figures), exercises with checked solutions (``exercises``) and timing helpers. Top layer.
"""
from .runner import record

__all__ = ["record"]
