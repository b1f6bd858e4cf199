"""Writing output files: whole or not at all, with normal permissions, and a check that a
command can write its output before it does the work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fp8hw.errors import Fp8hwError


class OutputError(Fp8hwError):
    """An output file that cannot be written where it was asked for."""


def check_output_path(path) -> Path:
    """Raise OutputError unless ``path`` names a file that can be created or replaced."""
    path = Path(path)
    if str(path) in ("", "."):
        raise OutputError("the output path is empty")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: folder {parent} does not exist")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{path}: file is not writable")
    return path


def write_atomic(path, write) -> None:
    """Create ``path`` through ``write(file)`` (a binary file object) in a temporary file
    beside it, then rename it into place: the file appears complete or not at all. Its
    permissions are the usual ones for a new file (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode()))
