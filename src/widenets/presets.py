"""Named architectures, and architectures read from JSON/TOML files.

Presets (hidden widths are those of the finite network; the kernels do not depend on them;
``n_outputs`` is the readout width, default 1):

``fc{L}-{act}``  e.g. ``fc3-relu``, ``fc1-erf``
    ``Flatten`` (a no-op on flat features; on images it makes the network act on all
    ``C*H*W`` values), ``L`` hidden Dense layers of width 512, each followed by the
    activation, then a Dense readout; ``bias_std=0.05`` everywhere; ``weight_std=sqrt(2)``
    for the hidden layers of ReLU/GELU/LeakyReLU/Abs networks (He scaling, the critical
    point of ReLU) and 1.0 for the others; readout ``weight_std=1``.  NTK parameterisation.
``{L}hl-{act}``  e.g. ``1hl-erf``, ``1hl-relu``, ``2hl-relu``
    The textbook networks: ``Flatten``, ``L`` hidden layers of width 512, no biases,
    ``weight_std=1`` everywhere, so that their NNGPs are the arcsine (Williams 1997) and
    arc-cosine (Cho and Saul 2009) kernels applied to ``x.x'/d``.
``cnn-gap-{L}``, ``cnn-flatten-{L}``  e.g. ``cnn-gap-8``
    ``L`` convolutions (3x3, padding 'same', 128 channels, ``weight_std=sqrt(2)``,
    ``bias_std=0.05``), each followed by ReLU, then global average pooling (CNTK-GAP) or
    Flatten (CNTK-V, the vanilla readout) and a Dense readout (``weight_std=1``,
    ``bias_std=0.05``).
``myrtle-5``, ``myrtle-7``, ``myrtle-10``
    Shankar et al. 2020, "Neural kernels without tangents" (sec. 4, fig. 1): 3x3 'same'
    convolutions with ReLU (``weight_std=sqrt(2)``, no bias, 128 channels) in three stages
    of 2, 1, 1 (myrtle-5), 2, 2, 2 (myrtle-7) or 3, 3, 3 (myrtle-10) conv layers, separated
    by 2x2 average pooling, then pooling to 1x1 and a Dense readout (``weight_std=sqrt(2)``,
    no bias), as in neural-tangents' Myrtle example.  The
    paper pools the final 8x8 map with three 2x2 poolings; we use global average pooling,
    which is identical on 32x32 inputs and also works on 28x28 ones.

``act`` is one of ``relu, erf, tanh, gelu, sigmoid, softplus, silu, abs, leaky_relu``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

import widenets.layers as L
from widenets.errors import HyperparameterError, WidenetsError, expected
from widenets.layers.base import Layer

WIDTH = 512
CHANNELS = 128
BIAS_STD = 0.05
ACTIVATIONS: dict[str, Callable[[], Layer]] = {
    "relu": L.Relu, "erf": L.Erf, "tanh": L.Tanh, "gelu": L.Gelu, "sigmoid": L.Sigmoid,
    "softplus": L.Softplus, "silu": L.Silu, "abs": L.Abs, "leaky_relu": L.LeakyRelu,
}
_HE = ("relu", "gelu", "abs", "leaky_relu")
MYRTLE_STAGES = {5: (2, 1, 1), 7: (2, 2, 2), 10: (3, 3, 3)}
EXAMPLES = ("fc1-erf", "fc3-relu", "1hl-erf", "1hl-relu", "2hl-relu", "cnn-gap-8",
            "cnn-flatten-8", "myrtle-5", "myrtle-7", "myrtle-10")


def fully_connected(depth: int, activation: str, n_outputs: int = 1) -> Layer:
    """``fc{depth}-{activation}`` (see the module docstring)."""
    w = math.sqrt(2.0) if activation in _HE else 1.0
    layers: list[Layer] = [L.Flatten()]
    for _ in range(depth):
        layers += [L.Dense(WIDTH, weight_std=w, bias_std=BIAS_STD), ACTIVATIONS[activation]()]
    return L.serial(*layers, L.Dense(n_outputs, weight_std=1.0, bias_std=BIAS_STD))


def textbook(depth: int, activation: str, n_outputs: int = 1) -> Layer:
    """``{depth}hl-{activation}``: no biases, ``weight_std=1``."""
    layers: list[Layer] = [L.Flatten()]
    for _ in range(depth):
        layers += [L.Dense(WIDTH, weight_std=1.0), ACTIVATIONS[activation]()]
    return L.serial(*layers, L.Dense(n_outputs, weight_std=1.0))


def _conv_relu(bias_std: float | None) -> list[Layer]:
    return [L.Conv2d(CHANNELS, 3, padding="same", weight_std=math.sqrt(2.0), bias_std=bias_std),
            L.Relu()]


def convolutional(depth: int, readout: str, n_outputs: int = 1) -> Layer:
    """``cnn-gap-{depth}`` or ``cnn-flatten-{depth}``."""
    layers = [x for _ in range(depth) for x in _conv_relu(BIAS_STD)]
    pool = L.GlobalAvgPool() if readout == "gap" else L.Flatten()
    return L.serial(*layers, pool, L.Dense(n_outputs, weight_std=1.0, bias_std=BIAS_STD))


def myrtle(depth: int, n_outputs: int = 1) -> Layer:
    """Myrtle-5/7/10 of Shankar et al. 2020 (see the module docstring)."""
    stages = MYRTLE_STAGES[depth]
    layers: list[Layer] = []
    for i, count in enumerate(stages):
        layers += [x for _ in range(count) for x in _conv_relu(None)]
        layers.append(L.AvgPool2d(2, 2) if i < 2 else L.GlobalAvgPool())
    return L.serial(*layers, L.Dense(n_outputs, weight_std=math.sqrt(2.0)))


_PATTERNS: list[tuple[re.Pattern, Callable[..., Layer]]] = [
    (re.compile(r"fc(\d+)-([a-z_]+)"), lambda m, n: fully_connected(int(m[1]), m[2], n)),
    (re.compile(r"(\d+)hl-([a-z_]+)"), lambda m, n: textbook(int(m[1]), m[2], n)),
    (re.compile(r"cnn-(gap|flatten)-(\d+)"), lambda m, n: convolutional(int(m[2]), m[1], n)),
    (re.compile(r"myrtle-(\d+)"), lambda m, n: myrtle(int(m[1]), n)),
]


def preset(name: str, n_outputs: int = 1) -> Layer:
    """The named architecture (see the module docstring for the list)."""
    key = name.strip().lower()
    for pattern, build in _PATTERNS:
        match = pattern.fullmatch(key)
        if match is None:
            continue
        numbers = [int(g) for g in match.groups() if g.isdigit()]
        words = [g for g in match.groups() if not g.isdigit()]
        if any(n < 1 or n > 1000 for n in numbers):
            raise HyperparameterError(expected("architecture", "a depth between 1 and 1000",
                                               repr(name)))
        if key.startswith("myrtle") and numbers[0] not in MYRTLE_STAGES:
            raise HyperparameterError(expected("architecture", "myrtle-5, myrtle-7 or myrtle-10",
                                               repr(name)))
        if not key.startswith(("cnn", "myrtle")) and words[0] not in ACTIVATIONS:
            raise HyperparameterError(expected("activation", f"one of {sorted(ACTIVATIONS)}",
                                               repr(words[0])))
        return build(match, n_outputs)
    raise HyperparameterError(expected(
        "architecture", f"a preset such as {', '.join(EXAMPLES)}, or a .json/.toml file",
        repr(name)))


def load_file(path: str | os.PathLike) -> Layer:
    """An architecture from a JSON or TOML file in :meth:`Layer.to_dict` format.

    The file holds the dict itself, or a table ``architecture`` holding it (TOML needs a
    top-level table: ``type = "Serial"`` followed by ``[[layers]]`` tables).  A TOML file
    cannot write ``None``: leave the key out to get the default (``bias_std`` is None).
    """
    path = Path(path)
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise WidenetsError(f"cannot parse the architecture file {path}: {err}") from err
    if isinstance(data, dict) and "architecture" in data and "type" not in data:
        data = data["architecture"]
    if not isinstance(data, dict):
        raise WidenetsError(expected("architecture file", "a layer description (a dict with a "
                                     "'type' key)", type(data).__name__))
    try:
        return Layer.from_dict(data)
    except TypeError as err:  # unknown or missing field of a layer class
        raise WidenetsError(f"bad layer description in {path}: {err}") from err


def architecture(name_or_path: str | os.PathLike | Layer | dict, *,
                 in_shape: Sequence[int] | None = None, n_outputs: int = 1) -> Layer:
    """A network from a preset name, a JSON/TOML file, a ``to_dict`` dict, or a Layer.

    Parameters
    ----------
    name_or_path : str, path, dict or Layer
        A preset (``"fc3-relu"``, ``"cnn-gap-8"``, ``"myrtle-5"``, ...; see
        :mod:`widenets.presets`), a path to a ``.json``/``.toml`` file, or a description.
    in_shape : sequence of int, optional
        Input shape without the batch axis (``(784,)``, ``(3, 32, 32)``); when given, the
        network is checked against it (a CNN refuses flat features).
    n_outputs : int
        Readout width of a preset (ignored for files, dicts and layers).

    Raises
    ------
    HyperparameterError
        Unknown preset name.
    WidenetsError
        Unreadable file, bad description, or a network that cannot take ``in_shape``.

    Examples
    --------
    >>> from widenets.presets import architecture
    >>> net = architecture("fc3-relu")
    >>> net.kernel(torch.randn(5, 10)).ntk.shape   # doctest: +SKIP
    torch.Size([5, 5])
    """
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 1:
        raise HyperparameterError(expected("n_outputs", "a positive int", repr(n_outputs)))
    if isinstance(name_or_path, Layer):
        net = name_or_path
    elif isinstance(name_or_path, dict):
        net = Layer.from_dict(name_or_path)
    else:
        text = os.fspath(name_or_path)
        if text.lower().endswith((".json", ".toml")) or os.path.sep in text:
            if not os.path.isfile(text):
                raise WidenetsError(f"architecture file {text} does not exist.")
            net = load_file(text)
        else:
            net = preset(text, n_outputs)
    if in_shape is not None:
        net.out_shape(tuple(int(s) for s in in_shape))
    return net
