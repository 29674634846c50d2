"""The training loop (training/loop.py) and its config (training/config.py): the config's choices are
checked when it is built and it never changes; the loop runs iterations of epochs, keeps the best
iteration, stops on a plateau, and a run a callback interrupts resumes from its checkpoint to the
same end as an uninterrupted one, for the asymmetric, symmetric and central trainers."""
import dataclasses
from dataclasses import dataclass, field, replace

import pytest
import torch

from fgh_tutorial.errors import BadOption
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.heads import HashingModel
from fgh_tutorial.systems import AsymmetricConfig as FromSystems
from fgh_tutorial.training.asymmetric import train_asymmetric
from fgh_tutorial.training.central import train_hashing
from fgh_tutorial.training.config import AsymmetricConfig, TrainConfig
from fgh_tutorial.training.loop import Best, Run, Steps, StopAfter, fit, resume
from fgh_tutorial.training.symmetric import train_symmetric

CHOICES = {"optimizer": ("sgd", "adamw"), "schedule": ("constant", "paper"), "similarity": ("soft", "hard"),
           "positives": ("batch", "dataset"), "erasing": ("grid", "anchors", "random", "parts"),
           "init_codes": ("random", "network")}


# ---------------------------------------------------------------- the config
@pytest.mark.parametrize("name, choices", CHOICES.items())
def test_a_bad_choice_names_the_field_and_its_choices(name, choices):
    with pytest.raises(BadOption, match=f"^{name} must be one of {choices!r}, got 'nonsense'$".replace("(", r"\(")
                       .replace(")", r"\)")):
        TrainConfig(**{name: "nonsense"})
    for good in choices:
        assert getattr(TrainConfig(**{name: good}), name) == good
    with pytest.raises(BadOption, match=name):  # a replaced config is checked as well
        replace(TrainConfig(), **{name: "nonsense"})


def test_loss_terms_are_checked_one_by_one():
    assert TrainConfig(terms=("srem", "esrl")).terms == ("srem", "esrl")
    for bad in [("dpsh",), ("srem", "dpsh"), "srem"]:
        with pytest.raises(BadOption, match=r"terms \(the loss terms\) must be among \('srem', 'esrl'\)"):
            TrainConfig(terms=bad)


def test_the_config_is_frozen_and_keeps_its_first_name():
    cfg = TrainConfig(lr=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 0.1
    assert replace(cfg, lr=0.1).lr == 0.1 and cfg.lr == 0.5
    assert AsymmetricConfig is TrainConfig and FromSystems is TrainConfig


# ---------------------------------------------------------------- the loop on a toy trainer
@dataclass
class Log:
    loss: list = field(default_factory=list)
    begun: list = field(default_factory=list)


class Toy(Steps):
    """Epoch (t, e) has the loss 10 t + e; iteration t scores scores[t]; the weight counts epochs."""

    def __init__(self, scores, epochs=2, patience=0):
        self.scores, self.iterations, self.epochs, self.patience = scores, len(scores), epochs, patience

    def begin(self, run, iteration, first_epoch):
        run.history.begun.append((iteration, first_epoch))

    def epoch(self, run, iteration, epoch):
        with torch.no_grad():
            run.model.weight += 1
        return 10 * iteration + epoch

    def end(self, run, iteration):
        if run.best is None or self.scores[iteration] > run.best.score:
            run.best = Best.of(run.model, iteration + 1, self.scores[iteration])

    def plateau(self, run):
        return bool(self.patience) and run.iteration - run.best.iteration >= self.patience


def toy_run():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    return Run(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.Generator().manual_seed(0), Log())


def test_the_loop_runs_every_epoch_and_keeps_the_best_iteration():
    run = toy_run()
    assert fit(Toy([0.2, 0.5, 0.3]), run, progress=False)
    assert run.history.loss == [0, 1, 10, 11, 20, 21] and run.history.begun == [(0, 0), (1, 0), (2, 0)]
    assert run.best.iteration == 2 and run.best.score == 0.5 and float(run.best.model["weight"]) == 4.0
    assert (run.iteration, run.epoch) == (3, 0) and float(run.model.weight.detach()) == 6.0


def test_a_plateau_stops_the_loop():
    run = toy_run()
    fit(Toy([0.5, 0.4, 0.3, 0.9], patience=2), run, progress=False)
    assert run.history.loss == [0, 1, 10, 11, 20, 21]  # iterations 2 and 3 no better than 1: no 4th


def test_a_callback_stops_the_loop_and_resume_continues_from_the_checkpoint(tmp_path):
    path = tmp_path / "toy.pt"
    first = toy_run()
    assert not fit(Toy([0.2, 0.5, 0.3]), first, path, [StopAfter(3)], progress=False)
    assert first.history.loss == [0, 1, 10] and (first.iteration, first.epoch) == (1, 1)
    again = toy_run()
    assert resume(path, again) is not None and float(again.model.weight.detach()) == 3.0
    assert fit(Toy([0.2, 0.5, 0.3]), again, path, progress=False)
    assert again.history.loss == [0, 1, 10, 11, 20, 21]
    assert again.history.begun == [(0, 0), (1, 0), (1, 1), (2, 0)]  # iteration 1 begun again at its second epoch
    assert again.best.iteration == 2 and float(again.best.model["weight"]) == 4.0 and float(again.model.weight.detach()) == 6.0
    assert resume(tmp_path / "none.pt", toy_run()) is None


# ---------------------------------------------------------------- the three trainers: interrupted == uninterrupted
def data(n=32, classes=4, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    x = torch.randn(n, 3, size, size, generator=g) * 0.3
    x[:, 0] += labels.view(-1, 1, 1) - 1.5
    return x, labels


def net(bits=8):
    torch.manual_seed(0)
    return HashingModel(build_backbone("minires"), bits)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


CFG = TrainConfig(segments=(8,), iterations=2, epochs=2, samples=16, batch_size=8, seed=1, amp=False)


@pytest.mark.parametrize("stop", [1, 3])
def test_asymmetric_resumes_to_the_same_end(tmp_path, stop):
    x, y = data()
    val = data(8, seed=1)
    cfg = replace(CFG, terms=("esrl",), positives="dataset")
    whole = net()
    V, hist = train_asymmetric(whole, x, y, cfg, val=val, progress=False)
    _, cut = train_asymmetric(net(), x, y, cfg, tmp_path, val, progress=False, callbacks=[StopAfter(stop)])
    assert len(cut.loss) == stop and cut.loss == hist.loss[:stop]
    resumed = net()
    V2, hist2 = train_asymmetric(resumed, x, y, cfg, tmp_path, val, progress=False)
    assert torch.equal(V, V2) and hist == hist2 and same_weights(whole, resumed)
    assert len(hist.loss) == 4 and len(hist.val_map) == 2 and hist.lr == [cfg.lr, cfg.lr]


def test_symmetric_resumes_to_the_same_end(tmp_path):
    x, y = data()
    val = data(8, seed=1)
    cfg = replace(CFG, optimizer="adamw", max_shift=0.125)
    loss = lambda m, xb, yb, g: (m(xb) - yb[:, None].float() / 4).pow(2).mean()  # noqa: E731
    whole = net()
    codes, hist = train_symmetric(whole, x, y, cfg, loss, val=val, progress=False)
    assert train_symmetric(net(), x, y, cfg, loss, checkpoint_dir=tmp_path, val=val, progress=False,
                           callbacks=[StopAfter(3)])[0] is None
    resumed = net()
    codes2, hist2 = train_symmetric(resumed, x, y, cfg, loss, checkpoint_dir=tmp_path, val=val, progress=False)
    assert torch.equal(codes, codes2) and hist == hist2 and same_weights(whole, resumed)
    assert len(hist.loss) == 4 and set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_central_resumes_to_the_same_end(tmp_path):
    x, y = data()
    val = data(8, seed=1)
    kw = dict(epochs=3, batch_size=8, seed=2, val=val, eval_every=1, progress=False)  # OneCycle: its state resumes too
    whole = net()
    hist = train_hashing(whole, x, y, **kw)
    cut = train_hashing(net(), x, y, checkpoint_dir=tmp_path, callbacks=[StopAfter(2)], **kw)
    assert cut.loss == hist.loss[:2]
    resumed = net()
    hist2 = train_hashing(resumed, x, y, checkpoint_dir=tmp_path, **kw)
    assert hist == hist2 and same_weights(whole, resumed)
    assert hist.val_epochs == [1, 2, 3] and hist.val_map[hist.best_epoch - 1] == max(hist.val_map)
