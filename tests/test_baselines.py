import numpy as np
import pytest

from fgh_tutorial.retrieval.baselines import ITQ, LSH, colour_histograms


def clustered(seed=0, n=300, d=20, k=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (k, d))
    labels = rng.integers(0, k, n)
    return centres[labels] + rng.normal(0, 1, (n, d)), labels


def test_itq_quantisation_loss_decreases_and_rotation_is_orthogonal():
    x, _ = clustered()
    itq = ITQ(8).fit(x)
    assert np.all(np.diff(itq.loss_) <= 1e-6)
    np.testing.assert_allclose(itq.rotation_ @ itq.rotation_.T, np.eye(8), atol=1e-10)
    codes = itq.encode(x)
    assert codes.shape == (300, 8) and set(np.unique(codes)) <= {-1, 1}


def test_itq_beats_lsh_on_clustered_data():
    from fgh_tutorial.retrieval.metrics import mean_average_precision

    x, y = clustered(1)
    itq, lsh = ITQ(8).fit(x), LSH(8).fit(x)
    m_itq = mean_average_precision(itq.encode(x), itq.encode(x), y, y)
    m_lsh = mean_average_precision(lsh.encode(x), lsh.encode(x), y, y)
    assert m_itq > m_lsh > 0.2


def test_lsh_deterministic_and_errors():
    x, _ = clustered()
    np.testing.assert_array_equal(LSH(16, seed=3).fit(x).encode(x), LSH(16, seed=3).fit(x).encode(x))
    with pytest.raises(ValueError, match="2-D"):
        LSH(4).fit(np.ones(5))
    with pytest.raises(ValueError, match="at least 64"):
        ITQ(64).fit(x)


def test_colour_histograms():
    img = np.zeros((2, 4, 4, 3), np.uint8)
    img[1] = 255
    h = colour_histograms(img, bins=4)
    assert h.shape == (2, 64) and h[0, 0] == 1 and h[1, 63] == 1
