"""Training: losses, the ADSH database-code solver, the asymmetric loop (ADSH / FCAENet / ExchNet),
single-network central-similarity training, schedules, checkpoints, profiles and the cached course
model. Imports ``data``, ``models``, ``attention`` and ``retrieval``.
"""
from .asymmetric import AsymmetricConfig, AsymmetricHistory, AsymmetricState, evaluate_asymmetric, train_asymmetric
from .cache import build_model, cache_dir, load_or_train
from .central import History, train_hashing
from .checkpoints import load_checkpoint, save_checkpoint
from .profiles import PROFILES, Profile, get_profile, seed_everything
from .solver import update_database_codes

__all__ = ["AsymmetricConfig", "AsymmetricHistory", "AsymmetricState", "History", "PROFILES", "Profile",
           "build_model", "cache_dir", "evaluate_asymmetric", "get_profile", "load_checkpoint", "load_or_train",
           "save_checkpoint", "seed_everything", "train_asymmetric", "train_hashing", "update_database_codes"]
