"""The library's own code, shown in a notebook beside the equation it implements: the page shows
the function that runs, read from the package at run time, so the page and the library cannot
drift apart (the library stays the one source)."""
from __future__ import annotations

import inspect


def show(fn):
    """The source of ``fn`` as a Markdown code block (plain text outside IPython)."""
    text = f"```python\n# {fn.__module__}.{fn.__qualname__}\n{inspect.getsource(fn)}```"
    try:
        from IPython.display import Markdown
    except ImportError:  # the course stack is not installed
        return text
    return Markdown(text)
