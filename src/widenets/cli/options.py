"""Command-line options shared by the commands that read an architecture and a data set."""

from __future__ import annotations

import typer

ARCH = typer.Option(..., "--arch", help="Preset (fc3-relu, cnn-gap-8, myrtle-5, ...) or a "
                    ".json/.toml architecture file.")
DATA = typer.Option(..., "--data", help="mnist, fashion-mnist, cifar10, cifar10-jpeg or digits.")
DATA_DIR = typer.Option(None, "--data-dir", help="Data directory (default: $WIDENETS_DATA or "
                        "../shared/data).")
PREPROCESSING = typer.Option("standardize", "--preprocessing", help="standardize, "
                             "standardize-pixels, per-image, zca or none.")
