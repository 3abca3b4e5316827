"""Reading MNIST-style data a user already has: IDX files (optionally gzipped) and ``.npz`` archives.

IDX (the format of the MNIST and Fashion-MNIST distributions): a 4-byte magic number ``0 0 T D`` —
``T`` the element type (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32,
``0x0E`` float64), ``D`` the number of dimensions — then ``D`` big-endian uint32 sizes, then the
elements, big-endian, row-major. Every inconsistency (short header, unknown type, a payload that is
not exactly ``prod(sizes)`` elements) raises :class:`CorruptDataError` naming the file and what is wrong.

A data folder holds the four standard files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each possibly with ``.gz``); an ``.npz`` archive
holds ``x_train``, ``y_train``, ``x_test``, ``y_test`` (the layout of Keras's ``mnist.npz``).
"""
from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

from ..runs.atomic import atomic_write_bytes

__all__ = ["CorruptDataError", "IDX_TYPES", "read_idx", "write_idx", "load_image_files"]

#: IDX type code -> big-endian numpy dtype.
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in IDX_TYPES.items()}
IDX_NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


class CorruptDataError(ValueError):
    """A data file is not what its format says (bad header, wrong size, missing arrays)."""


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise CorruptDataError(f"{path}: cannot be read ({err}).") from err


def read_idx(path) -> np.ndarray:
    """The array of an IDX file (``.gz`` read transparently), in native byte order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CorruptDataError
        For a file that is not a well-formed IDX file (module docstring).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {path} does not exist.")
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise CorruptDataError(f"{path}: not an IDX file (the magic number must start with two zero bytes, got "
                               f"{data[:4].hex() or 'an empty file'}).")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        raise CorruptDataError(f"{path}: unknown IDX element type 0x{code:02X}; valid: "
                               f"{', '.join(f'0x{c:02X}' for c in IDX_TYPES)}.")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise CorruptDataError(f"{path}: IDX header declares {ndim} dimensions but the file has {len(data)} bytes.")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise CorruptDataError(f"{path}: IDX header declares shape {shape} of {dtype.name} ({expected} bytes of data) "
                               f"but the file has {len(data) - header} bytes after the header (truncated or corrupt).")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzipped if the name ends in ``.gz``); for tests and conversions."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str[1:]
    if key not in _CODES:
        raise TypeError(f"IDX stores uint8, int8, int16, int32, float32 or float64, not {array.dtype}.")
    code = _CODES[key]
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
               + array.astype(IDX_TYPES[code]).tobytes())
    path = Path(path)
    return atomic_write_bytes(path, gzip.compress(payload) if path.suffix == ".gz" else payload)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder} has no {stem} (nor {stem}.gz); an IDX data folder holds "
                            f"{', '.join(IDX_NAMES.values())} (MNIST / Fashion-MNIST layout).")


def load_image_files(path) -> dict:
    """``{"x_train", "y_train", "x_test", "y_test"}`` from an IDX folder or an ``.npz`` archive (module docstring).

    Images are flattened to ``(N, H*W)`` float64; labels are int64.

    Raises
    ------
    FileNotFoundError, CorruptDataError
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data path {path} does not exist; give an IDX folder (MNIST layout) or an .npz file "
                                "with x_train, y_train, x_test, y_test.")
    if path.is_dir():
        arrays = {"x_train": read_idx(_find(path, IDX_NAMES["train_images"])),
                  "y_train": read_idx(_find(path, IDX_NAMES["train_labels"])),
                  "x_test": read_idx(_find(path, IDX_NAMES["test_images"])),
                  "y_test": read_idx(_find(path, IDX_NAMES["test_labels"]))}
    else:
        try:
            with np.load(path, allow_pickle=False) as stored:
                missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in stored.files]
                if missing:
                    raise CorruptDataError(f"{path}: the .npz archive lacks {', '.join(missing)} (it has "
                                           f"{', '.join(stored.files) or 'nothing'}).")
                arrays = {k: stored[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            if isinstance(err, CorruptDataError):
                raise
            raise CorruptDataError(f"{path}: not a readable .npz archive ({err}).") from err
    out = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim < 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise CorruptDataError(f"{path}: {split} images have shape {x.shape} and labels {y.shape}; expected "
                                   "(N, ...) images and (N,) labels.")
        if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise CorruptDataError(f"{path}: {split} labels must be non-negative integers, got {y.dtype}.")
        out[f"x_{split}"] = x.reshape(x.shape[0], -1).astype(np.float64)
        out[f"y_{split}"] = y.astype(np.int64)
    if out["x_train"].shape[1] != out["x_test"].shape[1]:
        raise CorruptDataError(f"{path}: training images have {out['x_train'].shape[1]} pixels, test images "
                               f"{out['x_test'].shape[1]}.")
    return out
