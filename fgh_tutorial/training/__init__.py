"""Training, one module per concept:

    losses          ADSH's loss, soft similarity, central similarity and its hash centres, ESRL
    solver          ADSH's discrete update of the database codes V; ``initial_codes``: where V starts
    asymmetric      the asymmetric loop of ADSH / FCAENet / ExchNet, with its mini-batches
                    (``batches``), ESRL's positives (``positives``) and learning-rate ``schedules``
    distributed     the asymmetric loop over several processes (torch.distributed)
    frozen          frozen-backbone mode: cached backbone features, the hash layer trained alone
    symmetric       one loop for the systems whose database codes are the network's own; ``dnnh``
                    (DNNH), ``triplets`` (order-aware triplets) and ``maxent`` (GAN-regularised
                    maximum entropy, on fakes of the DCGAN that ``gan`` trains) each run it with a loss
    central         central-similarity training of the course model; ``cache`` keeps it on disk
    checkpoints     atomic checkpoints read with ``weights_only=True``
    profiles        the ``cpu`` and ``gpu`` profiles

Imports ``data``, ``models``, ``attention`` and ``retrieval``.
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
