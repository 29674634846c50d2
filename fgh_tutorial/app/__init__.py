"""The application layer: the retrieval explorer's data side (``explorer``: one query's top-k, its
AP and CAMs; ``bundle``: trained systems on one dataset, one shipped as package data), pure figure
functions (``viz``) and their ipywidgets wiring (``widgets``). May import every layer below and
``systems`` / ``runs``; nothing imports it but notebooks and the command line.
"""
