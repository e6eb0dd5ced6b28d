"""Test accuracy of infinitely wide networks (NNGP, NTK) next to finite ones trained by SGD.

    nice -n 10 .venv/bin/python experiments/accuracy_table.py --out artifacts/accuracy.json
    nice -n 10 .venv/bin/python experiments/accuracy_table.py --out artifacts/accuracy.json \
        --table        # print the markdown table of what has been computed

What the README reports was run as two jobs (different sizes per architecture)::

    ... accuracy_table.py --out artifacts/accuracy.json --arch FC --sizes 100 1000 4000
    ... accuracy_table.py --out artifacts/accuracy_cnn.json --arch CNN-GAP --sizes 100 \
        --n-test 500
    ... accuracy_table.py --out artifacts/accuracy_cnn.json --arch CNN-GAP --sizes 100 1000 \
        --refit-finite        # (the first CNN run trained 32-channel networks)
    ... accuracy_table.py --out artifacts/accuracy.json --also artifacts/accuracy_cnn.json \
        --table

Each cell (data set, architecture, n_train) is computed once and stored in ``--out`` (a rerun
skips finished cells, so the script can be stopped and resumed).  Settings (see ``CONFIGS``):

* data: class-balanced subsets (``widenets.data.load``, seed 0), per-channel standardisation;
  ``n_test`` test images (class-balanced, from the official test split);
* kernels: ``widenets.predict.train_test_kernels``; classification by regression on
  one-hot targets minus 1/10 at t = inf with ``diag_reg=1e-4`` (relative to the mean diagonal);
* finite network: the same architecture (``net.module(seed=0, widths=...)``, NTK
  parameterisation, float32, the presets' widths: 512 units (FC), 128 channels (CNN)) trained
  by SGD (momentum 0.9, batch 64, cosine decay, cross-entropy, learning rate
  1.0, at least ``min_steps`` steps (1500 FC, 1000 CNN) and 20 epochs, at most 500 epochs),
  no augmentation; one seed.  One thread per job (``torch.set_num_threads(1)``): on a
  shared 2-core machine this is several times faster than two competing threads.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import widenets.data
from widenets.cli.predict import flatten_if_first
from widenets.finite.training import predict_labels, train_sgd
from widenets.predict import accuracy, classify_from_kernels, train_test_kernels
from widenets.presets import architecture

DATASETS = ("mnist", "fashion-mnist", "cifar10")
CONFIGS = {
    # label: (preset, downsample factor, finite width, min SGD steps, description)
    "FC": ("fc3-relu", 1, 512, 1500, "fc3-relu: 3 hidden Dense(512) + ReLU"),
    "CNN-GAP": ("cnn-gap-2", 4, 128, 1000,
                "cnn-gap-2 on 4x4-average-pooled images (7x7 / 8x8): 2 x "
                "[Conv3x3(same) + ReLU], global average pooling, Dense"),
}
DIAG_REG = 1e-4


def run_cell(data, label, n_train, n_test, echo):
    preset, downsample, *_ = CONFIGS[label]
    ds = widenets.data.load(data, n_train, n_test, downsample=downsample)
    net = architecture(preset, in_shape=tuple(ds.x_train.shape[1:]), n_outputs=ds.n_classes)
    start = time.perf_counter()
    x_train, x_test = flatten_if_first(net, ds.x_train, ds.x_test)
    # tiles of 128 x 128 pairs: 1.9 GB of working memory for the 7x7 GAP kernels
    k_dd, k_td = train_test_kernels(net, x_train, x_test,
                                    block_size=512 if label == "FC" else 128)
    kernel_seconds = time.perf_counter() - start
    row = {"data": data, "arch": label, "n_train": n_train, "n_test": len(ds.x_test),
           "kernel_seconds": kernel_seconds}
    for get in ("nngp", "ntk"):
        res = classify_from_kernels(k_dd, ds.y_train, k_td, n_classes=ds.n_classes, get=get,
                                    diag_reg=DIAG_REG)
        row[get] = accuracy(res.labels, ds.y_test)
    row.update(finite(ds, net, label))
    echo(json.dumps(row))
    return row


def finite(ds, net, label) -> dict:
    """Accuracy of the finite network trained by SGD (see the module docstring)."""
    _, _, width, min_steps, _ = CONFIGS[label]
    start = time.perf_counter()
    model = net.module(seed=0, widths=width, in_shape=tuple(ds.x_train.shape[1:]),
                       dtype=torch.float32)
    steps_per_epoch = math.ceil(len(ds.x_train) / 64)
    epochs = min(500, max(20, math.ceil(min_steps / steps_per_epoch)))
    train_sgd(model, ds.x_train, ds.y_train, epochs=epochs, batch_size=64, learning_rate=1.0)
    return {"sgd": accuracy(predict_labels(model, ds.x_test), ds.y_test), "sgd_epochs": epochs,
            "sgd_width": width, "sgd_seconds": time.perf_counter() - start}


def refit_finite(row, echo):
    """Redo only the finite-network column of a finished cell (same data and settings)."""
    preset, downsample, *_ = CONFIGS[row["arch"]]
    ds = widenets.data.load(row["data"], row["n_train"], row["n_test"], downsample=downsample)
    net = architecture(preset, in_shape=tuple(ds.x_train.shape[1:]), n_outputs=ds.n_classes)
    row.update(finite(ds, net, row["arch"]))
    echo(json.dumps(row))


def table(rows) -> str:
    lines = ["| data | architecture | n_train | n_test | NNGP | NTK | finite (SGD) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    order = {d: i for i, d in enumerate(DATASETS)}
    archs = {a: i for i, a in enumerate(CONFIGS)}
    for r in sorted(rows, key=lambda r: (order[r["data"]], archs[r["arch"]], r["n_train"])):
        lines.append(f"| {r['data']} | {r['arch']} | {r['n_train']} | {r['n_test']} | "
                     f"{100 * r['nngp']:.1f} | "
                     f"{100 * r['ntk']:.1f} | {100 * r['sgd']:.1f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("artifacts/accuracy.json"))
    parser.add_argument("--data", nargs="+", default=list(DATASETS))
    parser.add_argument("--arch", nargs="+", default=list(CONFIGS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 4000])
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--table", action="store_true", help="only print the table")
    parser.add_argument("--refit-finite", action="store_true",
                        help="redo only the SGD column of finished cells (e.g. new width)")
    parser.add_argument("--also", type=Path, nargs="*", default=[],
                        help="more result files to include in the printed table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    if args.refit_finite:
        for row in rows:
            if row["arch"] in args.arch and row["data"] in args.data \
                    and row["n_train"] in args.sizes:
                refit_finite(row, print)
                args.out.write_text(json.dumps(rows, indent=1))
    elif not args.table:
        for label in args.arch:
            for n in args.sizes:
                for data in args.data:
                    key = (data, label, n)
                    if any((r["data"], r["arch"], r["n_train"]) == key for r in rows):
                        continue
                    rows.append(run_cell(data, label, n, args.n_test, print))
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(rows, indent=1))
    extra = [r for path in args.also for r in json.loads(path.read_text())]
    print(table(rows + extra))


if __name__ == "__main__":
    main()
