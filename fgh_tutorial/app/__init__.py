"""The application layer: the retrieval explorer's data side (``explorer``: one query's top-k, its
AP and CAMs; ``bundle``: trained systems on one dataset, one shipped as package data), pure figure
functions (``viz``, and ``charts`` / ``design_figures`` for the experiments and notebook 08) and
their ipywidgets wiring (``widgets``). May import every layer below it; nothing in the package
imports it (the notebooks and the explorer app do). The figures and widgets need the ``course``
extra (matplotlib, ipywidgets); ``explorer`` and ``bundle`` do not.
"""
