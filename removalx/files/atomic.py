"""Write a file all at once or not at all.

:func:`atomic_write` writes to a temporary file in the destination's folder and moves it
over the destination with :func:`os.replace` only when writing succeeded, so a crash, a full
disk or an exception leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from removalx.errors import StorageError, truncate

__all__ = ["atomic_write", "storage_errors", "write_bytes"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Permissions of a new file (what ``open`` would give it): temporary files start at 0600.
_NEW_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success move it to ``path``.

    Parameters
    ----------
    path : str or Path
        The destination. Its folder is created when missing.
    mode : {"wb", "w"}
        Binary or text.
    encoding : str, optional
        Encoding of text mode (default UTF-8).

    Yields
    ------
    file object
        Write the whole content to it. If the ``with`` block raises, the temporary file is
        removed and ``path`` is left as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if mode == "w" else None) as fh:
            os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else _NEW_FILE_MODE)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def storage_errors(path: str | Path, what: str) -> Iterator[None]:
    """Turn an :class:`OSError` of writing ``what`` to ``path`` into a :class:`StorageError`."""
    try:
        yield
    except OSError as exc:
        raise StorageError(
            f"Cannot write {what} {truncate(str(path), 300)}: {truncate(str(exc), 200)}.",
            "Check that the path is a writable file name (not a folder) and that the disk has space; "
            "the previous file, if any, is unchanged.",
        ) from exc


def write_bytes(path: str | Path, data: bytes, what: str) -> Path:
    """Write ``data`` to ``path`` atomically; a failure is a :class:`StorageError`.

    Parameters
    ----------
    path : str or Path
        The destination.
    data : bytes
        The whole content.
    what : str
        What the file is, for the message (e.g. ``"the HTML report"``).
    """
    with storage_errors(path, what), atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)
