"""Retrieval: the code contract (``codes``), Hamming search and its compiled kernels (``hamming``,
``kernels``), ``HammingIndex`` and its backends (``index``), metrics (``metrics``) and the LSH/ITQ
baselines (``baselines``), the sharded index on Ray (``sharded``, ``ray_cluster``). numpy, numba and
torch only: every other layer may import it, it imports no other part of the package but the errors
and the atomic writer below everything (the code contract is what models, solver and metrics share).
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
