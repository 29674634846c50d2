"""Loss values against hand-computed small cases."""
import math

import torch

from fgh_tutorial.training.losses import adsh_loss, contrastive, esrl, soft_similarity


def test_soft_and_hard_similarity():
    s = soft_similarity(torch.tensor([0, 1]), torch.tensor([0, 0, 1]))
    # 3 similar pairs, 3 dissimilar: r = 1
    assert torch.allclose(s, torch.tensor([[1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]))
    # 1 similar pair, 2 dissimilar: r = 0.5
    assert torch.allclose(soft_similarity(torch.tensor([0]), torch.tensor([0, 1, 1])), torch.tensor([[1.0, -0.5, -0.5]]))
    assert torch.equal(soft_similarity(torch.tensor([0]), torch.tensor([0, 1]), "hard"), torch.tensor([[1.0, -1.0]]))
    assert torch.equal(soft_similarity(torch.tensor([0]), torch.tensor([0, 0])), torch.tensor([[1.0, 1.0]]))


def test_adsh_loss_by_hand():
    u = torch.tensor([[0.5, -0.5]])
    V = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    S = torch.tensor([[1.0, -1.0]])
    # u.v1 = 1, u.v2 = 0; c = 2: (1 - 2)^2 + (0 + 2)^2 = 5; quantisation: ||v1 - u||^2 = 0.5
    got = adsh_loss(u, V, S, V[:1], gamma=2.0)
    assert math.isclose(got.item(), (5 + 2 * 0.5) / (2 * 1))


def test_contrastive_and_esrl_by_hand():
    a, b = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    got = contrastive(a, b, torch.tensor([1, 0]), margin=1.0)
    assert torch.allclose(got, torch.tensor([25.0, 0.25]))
    ua, up, ue = torch.zeros(1, 2), torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 2.0]])
    assert math.isclose(esrl(ua, up, ue, alpha=1.0, beta=0.5).item(), (2 + 0.5 * 4) / 2)
