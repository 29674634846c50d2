"""Training, one module per concept:

    config          ``TrainConfig`` (also ``AsymmetricConfig``): the frozen config of a run, its choices
                    checked when it is built
    loop            the one training loop (iterations of epochs, checkpoints, resuming, the ``Best``
                    iteration, early stop, callbacks such as ``StopAfter``) the trainers plug into
    losses          ADSH's loss, soft similarity, central similarity and its hash centres, ESRL
    solver          ADSH's discrete update of the database codes V; ``initial_codes``: where V starts
    asymmetric      the asymmetric steps of ADSH / FCAENet / ExchNet (sample, train, V-step, select),
                    with ESRL's positives (``positives``) and learning-rate ``schedules``; the
                    mini-batches come from ``data.loader``'s batch sources
    distributed     the asymmetric loop over several processes (torch.distributed)
    frozen          frozen-backbone mode: cached backbone features, the hash layer trained alone
    top_stages      ``--train-top K``: the top stages and the hash layer on cached maps (``stage_maps``)
    symmetric       the steps of the systems whose database codes are the network's own; ``dnnh``
                    (DNNH), ``triplets`` (order-aware triplets) and ``maxent`` (GAN-regularised
                    maximum entropy, on fakes of the DCGAN that ``gan`` trains) each plug in a loss
    central         central-similarity training of the course model; ``cache`` keeps it on disk
    gan             the DCGAN whose fakes ``maxent`` trains on
    checkpoints     atomic checkpoints read with ``weights_only=True``
    profiles        the ``cpu`` and ``gpu`` profiles

Imports ``data``, ``models``, ``attention`` and ``retrieval``.
"""
from .asymmetric import AsymmetricHistory, AsymmetricState, evaluate_asymmetric, train_asymmetric
from .cache import build_model, cache_dir, load_or_train
from .central import History, train_hashing
from .checkpoints import load_checkpoint, save_checkpoint
from .config import AsymmetricConfig, TrainConfig
from .loop import Best, StopAfter
from .profiles import PROFILES, Profile, get_profile, seed_everything
from .solver import update_database_codes

__all__ = ["AsymmetricConfig", "AsymmetricHistory", "AsymmetricState", "Best", "History", "PROFILES", "Profile", "StopAfter",
           "TrainConfig",
           "build_model", "cache_dir", "evaluate_asymmetric", "get_profile", "load_checkpoint", "load_or_train",
           "save_checkpoint", "seed_everything", "train_asymmetric", "train_hashing", "update_database_codes"]
