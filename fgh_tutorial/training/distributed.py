"""Data-parallel asymmetric training over several processes, with PyTorch's own engine
(``torch.distributed`` and ``DistributedDataParallel``):

    torchrun --nproc_per_node 4 -m fgh_tutorial train --method fcaenet --profile gpu --out runs/fcaenet48

torchrun starts one process per GPU (or several on a CPU) and sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; :func:`join_from_env` joins their group (nccl on CUDA, one GPU per
process; gloo on the CPU). One iteration of ``training/asymmetric.py`` then runs on W processes as:

1. ``sample``       every process draws the same Omega from the same seeded generator (nothing sent);
2. ``train_epoch``  every process reads each mini-batch of B positions as one process would (the
                    random draws of augmentation and positives are the whole batch's, so each image
                    is augmented as in one process and the generators stay in step; they are also
                    re-synchronised from rank 0 after each epoch) and runs its rows r, r+W, ...
                    through the network. DDP averages the gradients, so with a loss that is a mean
                    over the batch, the local loss scaled by W b_r / B (1 when W divides B), the step
                    is the one-process step on the whole batch. After the epoch the rows of U each
                    process filled are gathered (all_gather);
3. ``v_step``       on rank 0 from the gathered U, V broadcast to all as int8 signs (exact);
4. ``select``       validation on rank 0 only; checkpoints are written by rank 0 and read by all.

What differs from one process: batch-norm statistics are per process on the CPU (a CUDA run
converts them to ``SyncBatchNorm``), in-batch ESRL positives (``positives="batch"``) are drawn within a
process's rows, and float sums run in another order. Every process decodes the whole batch of an image
Dataset, and the run folder and checkpoints must be on storage every node reads.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..errors import BadOption

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class _Replica(DistributedDataParallel):
    """DDP whose missing attributes (``bits``, ``backbone``, ``takes_labels``, ``aux_loss``) are
    the wrapped network's, so the loss code treats it as the network itself."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a process group: ``rank`` of ``world`` processes, on ``device``."""
    rank: int
    world: int
    device: torch.device
    owns_group: bool = False  # whether :meth:`close` ends the process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------ sharding a mini-batch
    def shard(self, size: int) -> slice:
        """This process's rows of a mini-batch of ``size``: r, r + W, r + 2W, ..."""
        if size < self.world:
            raise BadOption(f"a mini-batch of {size} cannot be split over {self.world} processes: "
                             f"raise batch_size (and samples) to at least {self.world}")
        return slice(self.rank, None, self.world)

    def shard_batches(self, batches):
        """This process's rows of every (positions, x, x_pos) batch of an epoch. Every process
        reads the whole batch (its random draws keep the generators in step); only its rows go
        through the network."""
        for pos, x, x_pos in batches:
            rows = self.shard(len(pos))
            yield pos[rows], x[rows], (None if x_pos is None else x_pos[rows])

    def loss_scale(self, local: int, size: int) -> float:
        """W b_r / B: DDP averages W gradients of per-process means, so this factor makes the
        step that of the mean over the whole batch of B (1.0 when W divides B)."""
        return self.world * local / size

    # ------------------------------------------------------------ collectives
    def wrap(self, model) -> DistributedDataParallel:
        """``model`` in DDP (with ``SyncBatchNorm`` on CUDA); parameters start as rank 0's."""
        # a 1 x 1 convolution's weight gradient can come with other strides on its size-1 axes: the
        # same memory layout, which DDP's layout check still reports (and copies, correctly)
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        if self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            return _Replica(model, device_ids=[self.device.index])
        return _Replica(model)

    def gather_rows(self, U: torch.Tensor, mine: torch.Tensor) -> torch.Tensor:
        """U with the rows ``mine`` of every process (all_gather of positions and rows)."""
        mine = mine.to(U.device, torch.int64)
        counts = [torch.zeros(1, dtype=torch.int64, device=U.device) for _ in range(self.world)]
        dist.all_gather(counts, torch.tensor([len(mine)], device=U.device))
        longest = int(max(c.item() for c in counts))
        pos = torch.full((longest,), -1, dtype=torch.int64, device=U.device)
        pos[:len(mine)] = mine
        rows = torch.zeros(longest, U.shape[1], dtype=U.dtype, device=U.device)
        rows[:len(mine)] = U[mine]
        all_pos, all_rows = [torch.empty_like(pos) for _ in counts], [torch.empty_like(rows) for _ in counts]
        dist.all_gather(all_pos, pos)
        dist.all_gather(all_rows, rows)
        U = U.clone()
        for p, r, c in zip(all_pos, all_rows, counts):
            U[p[:int(c)]] = r[:int(c)]
        return U

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes."""
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def sync_generator(self, g: torch.Generator) -> None:
        """Every process's generator set to rank 0's state."""
        state = g.get_state().to(self.device)
        dist.broadcast(state, 0)
        g.set_state(state.cpu())

    def broadcast_codes(self, V: torch.Tensor) -> torch.Tensor:
        """Rank 0's +-1 codes on every process, sent as int8 (4x less than floats, exact)."""
        signs = V.to(torch.int8).contiguous()
        dist.broadcast(signs, 0)
        return signs.to(V.dtype)

    def broadcast_model(self, model) -> None:
        """Rank 0's weights and buffers into every process's ``model``."""
        for t in model.state_dict().values():
            dist.broadcast(t, 0)

    def finish_epoch(self, state, mine: list, loss: float, g: torch.Generator) -> float:
        """After an epoch: gather U, re-synchronise the generator; returns the mean loss of all."""
        empty = torch.empty(0, dtype=torch.int64, device=state.U.device)
        state.U = self.gather_rows(state.U, torch.cat(mine) if mine else empty)
        self.sync_generator(g)
        return self.mean(loss)

    def decide(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every process; everyone waits until rank 0 gets there."""
        t = torch.tensor([int(bool(flag))], device=self.device)
        dist.broadcast(t, 0)
        return bool(t.item())

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def join_from_env(device: str | None = None) -> Distributed | None:
    """Join the process group torchrun describes in the environment; ``None`` for one process.

    The backend is nccl with one GPU per process (``cuda:LOCAL_RANK``) when CUDA is available and
    ``device`` is not ``"cpu"``, gloo on the CPU otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    missing = [k for k in ENV if k not in os.environ]
    if missing:
        raise BadOption(f"WORLD_SIZE is set but {', '.join(missing)} is not: start the processes with torchrun")
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    cuda = torch.cuda.is_available() and not str(device or "").startswith("cpu")
    if cuda:
        if local >= torch.cuda.device_count():
            raise BadOption(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s): "
                             "use --nproc_per_node <= the number of GPUs")
        torch.cuda.set_device(local)
    where = torch.device("cuda", local) if cuda else torch.device("cpu")
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world,
                                **({"device_id": where} if cuda else {}))
    return Distributed(rank, world, where, owns)
