"""Where the bundled data sets live and how their files are read (no downloads, ever).

The data directory is, in order: the ``data_dir`` argument, the ``WIDENETS_DATA`` environment
variable, or the first ``shared/data`` directory found by walking up from the current working
directory and from this package (a checkout at ``<root>/main`` finds ``<root>/shared/data``).
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

from widenets.errors import DataNotFoundError, InputValueError

ENV_VAR = "WIDENETS_DATA"
README_HINT = ("the files are described in shared/data/README.md of the widenets project "
               "(original MNIST/Fashion-MNIST IDX .gz files, CIFAR-10 subsets as .npz)")


def find_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data directory and a phrase saying where it came from.

    Raises
    ------
    DataNotFoundError
        If ``data_dir`` or ``WIDENETS_DATA`` names a directory that does not exist, or if
        neither is given and no ``shared/data`` directory is found.
    """
    for value, origin in ((data_dir, "the `data_dir` argument"),
                          (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if value is not None:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise DataNotFoundError(f"data directory {path} (from {origin}) does not exist; "
                                        f"create it and put the data files there ({README_HINT}).")
            return path.resolve(), origin
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / "shared" / "data"
            if candidate.is_dir():
                return candidate, f"found by searching upward from {start}"
    raise DataNotFoundError(
        f"no data directory: pass `data_dir`, set ${ENV_VAR}, or put the files in a "
        f"`shared/data` directory above {starts[0]} ({README_HINT}).")


def require(directory: Path, origin: str, relative: str, what: str) -> Path:
    """``directory / relative``, or a DataNotFoundError saying exactly what to put where."""
    path = directory / relative
    if not path.is_file():
        raise DataNotFoundError(
            f"missing data file {path} ({what}); data directory {directory} comes from {origin}. "
            f"Put the file at that path, or point `data_dir` / ${ENV_VAR} at a directory "
            f"holding {relative} ({README_HINT}).")
    return path


def read_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file (the MNIST format) as a read-only uint8 array (cached)."""
    stat = path.stat()
    return _read_idx_cached(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise InputValueError(f"{path} is not an IDX file of uint8 (bad magic number).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)):
        raise InputValueError(f"{path} is truncated: header says {shape}, "
                              f"but it holds {len(raw) - offset} values.")
    array = np.frombuffer(raw, np.uint8, offset=offset).reshape(shape)
    array.flags.writeable = False
    return array


@functools.lru_cache(maxsize=4)
def _read_npz_cached(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file (cached; pickles refused)."""
    stat = path.stat()
    return _read_npz_cached(str(path), stat.st_mtime_ns, stat.st_size)
