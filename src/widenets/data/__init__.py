"""Loaders for the bundled data sets (MNIST, Fashion-MNIST, CIFAR-10 subsets, digits).

Nothing is ever downloaded: files are read from the data directory (``data_dir``, else
``$WIDENETS_DATA``, else ``shared/data`` found above the working directory or the package),
and a missing file raises :class:`widenets.errors.DataNotFoundError` naming it.

>>> import widenets.data
>>> ds = widenets.data.load("cifar10", n_train=1000, n_test=500)   # doctest: +SKIP
>>> ds.x_train.shape                                               # doctest: +SKIP
torch.Size([1000, 3, 32, 32])
"""

from widenets.data.dataset import Dataset, balanced_indices, load
from widenets.data.files import find_data_dir
from widenets.data.preprocess import METHODS as PREPROCESSING
from widenets.data.sources import NAMES

__all__ = ["NAMES", "PREPROCESSING", "Dataset", "balanced_indices", "find_data_dir", "load"]
