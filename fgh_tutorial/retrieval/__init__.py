"""Retrieval: the code contract (``codes``), Hamming search and its compiled kernels (``hamming``,
``kernels``), ``HammingIndex`` and its backends (``index``), the same search on a GPU (``gpu``, with
the Triton kernels of ``gpu_kernels``) and over shards held by Ray actors (``sharded``, with the
deadlines of ``ray_cluster``), metrics (``metrics``), bit balance (``balance``) and the LSH/ITQ
baselines (``baselines``).

Needs numpy, numba and torch; Triton (``gpu``), Ray (``sharded``) and faiss (``index``'s faiss
backend) are imported only when those are used. Every other layer may import it; it imports no
other part of the package but ``errors.py`` and ``files.py`` below everything (the code contract is
what models, solver and metrics share).
"""
from .baselines import ITQ, LSH, colour_histograms
from .codes import (WORD_BITS, as_sign_array, binarize, hard_sign, load_codes, pack_codes, save_codes,
                    unpack_codes)
from .hamming import hamming_distances, hamming_rank, hamming_topk, hamming_topk_torch
from .index import HammingIndex
from .metrics import (average_precisions, distance_histograms, map_at_k, map_from_distances,
                      mean_average_precision, pr_curve, precision_at_k)

__all__ = ["HammingIndex", "ITQ", "LSH", "WORD_BITS", "as_sign_array", "average_precisions", "binarize",
           "colour_histograms", "distance_histograms", "hamming_distances", "hamming_rank", "hamming_topk",
           "hamming_topk_torch", "hard_sign", "load_codes", "map_at_k", "map_from_distances",
           "mean_average_precision", "pack_codes", "pr_curve", "precision_at_k", "save_codes", "unpack_codes"]
