"""widenets.data: subsets, provenance, preprocessing and the missing-file errors."""

import gzip

import numpy as np
import pytest
import torch

import widenets.data as wd
from widenets.errors import DataNotFoundError, HyperparameterError

try:
    DATA_DIR, _ = wd.find_data_dir()
except DataNotFoundError:  # pragma: no cover - CI always has ../shared/data
    DATA_DIR = None
needs_data = pytest.mark.skipif(DATA_DIR is None, reason="bundled data directory not found")


def read_idx(path):
    """An independent IDX reader (the README's recipe)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


@needs_data
@pytest.mark.parametrize("name,folder", [("mnist", "mnist"), ("fashion-mnist", "fashion-mnist")])
def test_idx_sets_match_the_files_pixel_for_pixel(name, folder):
    ds = wd.load(name, 30, 20, preprocessing="none")
    images = read_idx(DATA_DIR / folder / "train-images-idx3-ubyte.gz")
    labels = read_idx(DATA_DIR / folder / "train-labels-idx1-ubyte.gz")
    idx = ds.train_index.numpy()
    np.testing.assert_array_equal(ds.x_train[:, 0].numpy() * 255, images[idx])
    np.testing.assert_array_equal(ds.y_train.numpy(), labels[idx])
    test_labels = read_idx(DATA_DIR / folder / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(ds.y_test.numpy(), test_labels[ds.test_index.numpy()])
    assert ds.x_train.dtype == torch.float64 and ds.y_train.dtype == torch.int64
    assert ds.x_train.shape == (30, 1, 28, 28)


@needs_data
def test_cifar_is_nchw_rgb_from_the_lossless_file():
    ds = wd.load("cifar10", 20, 10, preprocessing="none")
    with np.load(DATA_DIR / "cifar10" / "cifar10_lossless_subset.npz") as f:
        x, y = f["x_train"], f["y_train"]
    idx = ds.train_index.numpy()
    np.testing.assert_array_equal(ds.x_train.numpy() * 255, x[idx].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(ds.y_train.numpy(), y[idx])
    assert ds.class_names[0] == "airplane" and ds.n_classes == 10


@needs_data
def test_subsets_are_balanced_nested_deterministic_and_seeded():
    small = wd.load("mnist", 95, 10, flatten=True)
    large = wd.load("mnist", 1000, 10, flatten=True)
    counts = small.y_train.bincount(minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 95
    assert (large.y_train.bincount() == 100).all()
    assert torch.equal(large.train_index[:95], small.train_index)
    again = wd.load("mnist", 95, 10, flatten=True)
    assert torch.equal(again.x_train, small.x_train)
    other = wd.load("mnist", 95, 10, seed=1)
    assert not torch.equal(other.train_index, small.train_index)
    assert len(set(small.train_index.tolist())) == 95
    assert small.x_train.shape == (95, 784)


def test_balanced_indices_when_a_class_runs_out():
    labels = np.array([0] * 2 + [1] * 10 + [2] * 10)
    idx = wd.balanced_indices(labels, 20, seed=3)
    assert np.bincount(labels[idx]).tolist() == [2, 9, 9]
    assert len(set(idx.tolist())) == 20


def test_digits_split_and_per_feature_standardisation():
    ds = wd.load("digits", 200, 100, preprocessing="standardize-pixels")
    assert ds.x_train.shape == (200, 1, 8, 8) and (ds.y_test.bincount() == 10).all()
    assert (ds.train_index < 1197).all() and (ds.test_index < 600).all()
    flat = ds.x_train.reshape(200, -1)
    std = flat.std(0, unbiased=False)
    varying = std > 0
    torch.testing.assert_close(flat.mean(0), torch.zeros(64, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(std[varying], torch.ones(int(varying.sum()), dtype=torch.float64))


def test_per_channel_and_per_image_standardisation():
    ds = wd.load("digits", 300, 50)
    assert abs(float(ds.x_train.mean())) < 1e-12
    assert abs(float(ds.x_train.std(unbiased=False)) - 1) < 1e-12
    img = wd.load("digits", 20, 20, preprocessing="per-image").x_test.reshape(20, -1)
    torch.testing.assert_close(img.mean(1), torch.zeros(20, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(img.std(1, unbiased=False), torch.ones(20, dtype=torch.float64))


def test_zca_spectrum_matches_the_formula():
    # Independent recomputation: per-image standardise the raw digits, take the eigenvalues s
    # of their (uncentred) covariance; whitening maps them to s / (s + reg * mean(s)), and the
    # global factor makes them sum to d (unit mean square).  Rounding only: rtol 1e-9.
    from sklearn.datasets import load_digits

    reg = 0.1
    ds = wd.load("digits", 1197, 10, preprocessing="zca", zca_reg=reg)
    raw = load_digits().images.reshape(-1, 64)[ds.train_index.numpy()]
    raw = raw - raw.mean(1, keepdims=True)
    raw = raw / raw.std(1, keepdims=True)
    s = np.clip(np.linalg.eigvalsh(raw.T @ raw / len(raw)), 0, None)
    p = s / (s + reg * s.mean())
    expected = 64 * p / p.sum()
    x = ds.x_train.reshape(len(ds.x_train), -1).numpy()
    got = np.linalg.eigvalsh(x.T @ x / len(x))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert abs(np.mean(x**2) - 1) < 1e-12
    assert "ZCA" in ds.preprocessing


def test_missing_file_says_which_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv("WIDENETS_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="mnist/train-images-idx3-ubyte.gz"):
        wd.load("mnist", 10, 10, data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="cifar10_lossless_subset.npz"):
        wd.load("cifar10", 10, 10, data_dir=tmp_path)
    monkeypatch.setenv("WIDENETS_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="WIDENETS_DATA"):
        wd.load("mnist", 10, 10)


def test_data_dir_search_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("WIDENETS_DATA", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    work = tmp_path / "main" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    found, origin = wd.find_data_dir()
    assert found == (tmp_path / "shared" / "data").resolve() and "upward" in origin
    monkeypatch.setenv("WIDENETS_DATA", str(tmp_path))
    assert wd.find_data_dir()[0] == tmp_path.resolve()
    assert wd.find_data_dir(work)[0] == work.resolve()


@pytest.mark.parametrize("kwargs,match", [
    ({"name": "imagenet"}, "`name` must be one of"),
    ({"name": "digits", "n_train": 5000}, "`n_train` must be at most 1197"),
    ({"name": "digits", "n_test": 0}, "`n_test` must be a positive int"),
    ({"name": "digits", "preprocessing": "whiten"}, "`preprocessing` must be one of"),
    ({"name": "digits", "preprocessing": "zca", "zca_reg": 0.0}, "`zca_reg` must be"),
    ({"name": "digits", "seed": 1.5}, "`seed` must be an int"),
])
def test_bad_arguments(kwargs, match):
    kwargs = {"n_train": 10, "n_test": 10, **kwargs}
    with pytest.raises(HyperparameterError, match=match):
        wd.load(**kwargs)


def test_one_hot_targets():
    ds = wd.load("digits", 20, 10)
    y = ds.one_hot(centre=0.1)
    assert y.shape == (20, 10)
    torch.testing.assert_close(y.sum(1), torch.full((20,), 0.0, dtype=torch.float64))
    assert torch.equal(y.argmax(1), ds.y_train)


def test_downsample_averages_blocks():
    full = wd.load("digits", 20, 5, preprocessing="none")
    small = wd.load("digits", 20, 5, preprocessing="none", downsample=2)
    expected = full.x_train.reshape(20, 1, 4, 2, 4, 2).mean(dim=(3, 5))
    torch.testing.assert_close(small.x_train, expected, rtol=0, atol=1e-15)
    assert "average pooling" in wd.load("digits", 20, 5, downsample=4).preprocessing
    with pytest.raises(HyperparameterError, match="`downsample` must be a divisor"):
        wd.load("digits", 20, 5, downsample=3)
