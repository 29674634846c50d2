"""Networks: backbones (feature map + pooled feature), the hash layer, ExchNet, DNNH, two-pyramid
hashing, the DCGAN of GAN-regularised hashing (``models.gan``), and the encoder
that turns images into codes. Imports ``data`` and ``retrieval.codes`` only.

Every network is built as ``Network(backbone, bits, n_classes)`` (the registry of systems,
``systems.py``, names the class) and names the layer its Grad-CAMs read (``cam_layer()``).
"""
from .backbones import NAMES as BACKBONES, Backbone, build_backbone
from .dnnh import DNNH
from .encode import encode, pooled_features, relaxed_codes
from .exchnet import ExchNet
from .heads import HashHead, HashingModel
from .pyramid import TwoPyramid

__all__ = ["BACKBONES", "Backbone", "DNNH", "ExchNet", "HashHead", "HashingModel", "build_backbone",
           "TwoPyramid", "encode", "pooled_features", "relaxed_codes"]
