"""Classification data: shapes, classes, splits, determinism without network access; IDX files; errors."""
from __future__ import annotations

import gzip
import socket

import numpy as np
import pytest
import torch

from tpdynamics.data import CorruptDataError, load_task, parse_task, read_idx, write_idx
from tpdynamics.data import cache_folder
from tpdynamics.errors import MissingExtraError


@pytest.fixture
def no_network(monkeypatch):
    """Every socket creation and connection fails: the loaders must not need the network."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TPDYNAMICS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _check_splits(data, n_features, sizes):
    assert data.sizes == sizes
    assert data.n_features == n_features and data.n_classes == 10
    for split in ("train", "validation", "test"):
        x, y = data.split(split)
        assert x.shape == (sizes[split], n_features) and x.dtype == torch.float64 and y.dtype == torch.long
        assert set(y.tolist()) == set(range(10))
    # standardised on the training split: zero mean, unit (or zero, for constant pixels) std there
    assert torch.allclose(data.train_inputs.mean(0), torch.zeros(n_features, dtype=torch.float64), atol=1e-12)
    stds = data.train_inputs.std(0, unbiased=False)
    assert bool((((stds - 1).abs() < 1e-9) | (stds < 1e-12)).all())
    assert abs(float(data.test_inputs.mean())) > 1e-6  # the held-out splits are not re-standardised


def test_digits_shapes_splits_and_determinism(no_network):
    pytest.importorskip("sklearn")
    a, b, c = load_task("digits", seed=0), load_task("digits", seed=0), load_task("digits", seed=1)
    _check_splits(a, 64, {"train": 1077, "validation": 360, "test": 360})
    assert torch.equal(a.train_inputs, b.train_inputs) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(a.test_labels, c.test_labels)
    # the splits partition the 1797 samples (no sample in two splits): compare raw pixel rows
    raw = [torch.round(x * s.std + s.mean) for s in (a,) for x in (a.train_inputs, a.val_inputs, a.test_inputs)]
    rows = {tuple(r.tolist()) + (k,) for k, x in enumerate(raw) for r in x}
    assert len(rows) == 1797


def test_mnist1d_generated_locally_and_cached(no_network, cache):
    pytest.importorskip("mnist1d")
    state = np.random.get_state()
    first = load_task("mnist1d:3,500", seed=0)
    assert np.array_equal(np.random.get_state()[1], state[1])  # numpy's global random state left alone
    assert not first.info["cache_reused"] and (cache / "mnist1d-seed3-n500-v" f"{first.info['source'].split()[1]}.npz").exists()
    again = load_task("mnist1d:3,500", seed=0)
    assert again.info["cache_reused"] and torch.equal(first.train_inputs, again.train_inputs)
    _check_splits(first, 40, {"train": 300, "validation": 100, "test": 100})
    other = load_task("mnist1d:4,500", seed=0)
    assert not torch.equal(first.train_inputs, other.train_inputs)
    # a damaged cache file is rebuilt, not trusted
    path = cache / [p.name for p in cache.iterdir() if "seed3" in p.name][0]
    path.write_bytes(b"garbage")
    rebuilt = load_task("mnist1d:3,500", seed=0)
    assert not rebuilt.info["cache_reused"] and torch.equal(rebuilt.train_inputs, first.train_inputs)


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TPDYNAMICS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == tmp_path / "tpdynamics"
    monkeypatch.setenv("TPDYNAMICS_CACHE", str(tmp_path / "mine"))
    assert cache_folder() == tmp_path / "mine"


def _write_mnist_like(folder, n_train=60, n_test=20, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 4, 5), dtype=np.uint8),
              "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 4, 5), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8)}
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), array)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_written_by_the_test_read_back(tmp_path, no_network, gz):
    arrays = _write_mnist_like(tmp_path / "mnist", gz=gz)
    suffix = ".gz" if gz else ""
    back = read_idx(tmp_path / "mnist" / f"train-images-idx3-ubyte{suffix}")
    assert back.dtype == np.uint8 and np.array_equal(back, arrays["train-images-idx3-ubyte"])
    # the header by hand: magic 0 0 0x08 3, sizes big-endian
    raw = (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").read_bytes() if not gz else \
        gzip.decompress((tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert raw[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 20])
    data = load_task(f"idx:{tmp_path / 'mnist'}", seed=0)
    assert data.sizes == {"train": 50, "validation": 10, "test": 20}  # a sixth of 60 for validation
    assert data.n_features == 20 and data.n_classes == 10
    expected = arrays["t10k-images-idx3-ubyte"].reshape(20, -1)
    assert np.allclose((data.test_inputs * data.std + data.mean).numpy(), expected)  # test split = the test files
    assert torch.equal(data.test_labels, torch.as_tensor(arrays["t10k-labels-idx1-ubyte"], dtype=torch.long))


def test_npz_archive(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "m.npz", x_train=rng.random((30, 3, 3)), y_train=np.arange(30) % 3,
             x_test=rng.random((6, 3, 3)), y_test=np.arange(6) % 3)
    data = load_task(str(tmp_path / "m.npz"))
    assert data.sizes == {"train": 25, "validation": 5, "test": 6} and data.n_classes == 3
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((3, 2)))
    with pytest.raises(CorruptDataError, match="lacks y_train, x_test, y_test"):
        load_task(f"idx:{tmp_path / 'bad.npz'}")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CorruptDataError, match="not a readable .npz"):
        load_task(str(tmp_path / "junk.npz"))


def test_corrupt_idx_files_are_rejected(tmp_path):
    arrays = _write_mnist_like(tmp_path / "m")
    path = tmp_path / "m" / "train-images-idx3-ubyte"
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # truncated payload
    with pytest.raises(CorruptDataError, match=r"declares shape \(60, 4, 5\).*truncated or corrupt"):
        read_idx(path)
    with pytest.raises(CorruptDataError, match="truncated or corrupt"):
        load_task(f"idx:{tmp_path / 'm'}")
    path.write_bytes(b"\x01\x02" + data[2:])
    with pytest.raises(CorruptDataError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x07, 3]) + data[4:])
    with pytest.raises(CorruptDataError, match="unknown IDX element type 0x07"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(CorruptDataError, match="declares 3 dimensions"):
        read_idx(path)
    gz = tmp_path / "m" / "x.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(CorruptDataError, match="cannot be read"):
        read_idx(gz)
    (tmp_path / "m" / "t10k-images-idx3-ubyte").unlink()
    path.write_bytes(data)
    with pytest.raises(FileNotFoundError, match="has no t10k-images-idx3-ubyte"):
        load_task(f"idx:{tmp_path / 'm'}")
    assert arrays


def test_task_errors(monkeypatch):
    with pytest.raises(ValueError, match="task='cifar' is not valid; use one of digits, idx:PATH, mnist1d"):
        load_task("cifar")
    with pytest.raises(ValueError, match="task 'idx' needs a path"):
        parse_task("idx")
    with pytest.raises(ValueError, match="mnist1d:SEED,N"):
        parse_task("mnist1d:x")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_task("idx:/nonexistent/folder")
    import builtins
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn") or name.startswith("mnist1d"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    for mod in [m for m in list(__import__("sys").modules) if m.startswith(("sklearn", "mnist1d"))]:
        monkeypatch.delitem(__import__("sys").modules, mod)
    with pytest.raises(MissingExtraError, match=r"pip install 'tpdynamics\[data\]'"):
        load_task("digits")
    with pytest.raises(MissingExtraError, match="the data extra"):
        load_task("mnist1d")
