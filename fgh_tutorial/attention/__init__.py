"""Attention: channel-mean class activation maps (FCAENet Eq. 3-4), the grad-cam bridge with
hash-code targets, localisation scores, and SREM (FCAENet Algorithm 1). Imports ``retrieval.codes``
only, and the grad-cam package when a gradient method is asked for.
"""
from .cam import (METHODS, CodeBit, CodeSimilarity, attention_maps, cam_layers, channel_mean_cam, compute_cams,
                  energy_share, pointing_hits)
from .srem import SREM, default_region_size, srem_mask

__all__ = ["CodeBit", "CodeSimilarity", "METHODS", "SREM", "attention_maps", "cam_layers", "channel_mean_cam",
           "compute_cams", "default_region_size", "energy_share", "pointing_hits", "srem_mask"]
