"""Crash-safe checkpoints: every file is written whole or not at all.

A file is written to a temporary name in the same directory, flushed to disk, and renamed
over the old one with ``os.replace`` (atomic on POSIX), so a process killed at any moment
(SIGKILL included) leaves either the previous checkpoint or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from widenets.errors import WidenetsError

STATE = "state.pt"
CONFIG = "config.json"


def atomic_write(path: Path, write) -> None:
    """Write ``path`` through ``write(file)`` atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class CheckpointDir:
    """A directory holding ``config.json`` (what is being computed) and ``state.pt``.

    ``open`` refuses to resume a directory whose configuration differs from the new one, so a
    rerun with other settings cannot silently mix two computations.
    """

    def __init__(self, path: str | os.PathLike, config: dict[str, Any]):
        self.path = Path(path)
        self.config = json.loads(json.dumps(config, sort_keys=True))
        self.path.mkdir(parents=True, exist_ok=True)
        config_file = self.path / CONFIG
        if config_file.exists():
            stored = json.loads(config_file.read_text())
            if stored != self.config:
                diff = sorted(k for k in set(stored) | set(self.config)
                              if stored.get(k) != self.config.get(k))
                raise WidenetsError(
                    f"checkpoint directory {self.path} holds a different run (differs in "
                    f"{', '.join(diff)}); use another directory or delete it.")
        else:
            text = json.dumps(self.config, sort_keys=True, indent=1).encode()
            atomic_write(config_file, lambda f: f.write(text))

    def load(self) -> dict[str, Any] | None:
        """The last saved state, or None if there is none yet."""
        path = self.path / STATE
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=False)

    def save(self, state: dict[str, Any]) -> None:
        atomic_write(self.path / STATE, lambda f: torch.save(state, f))


@contextlib.contextmanager
def deferred_interrupt():
    """Turn SIGINT into a flag checked between steps, so a step is never cut in half.

    Yields a one-element list whose item becomes True when SIGINT arrives.  Outside the main
    thread (where signal handlers cannot be set) the flag never changes.
    """
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag[0] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
