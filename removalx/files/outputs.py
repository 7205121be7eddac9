"""Output paths: checked before any work, written whole or not at all.

A command that computes for minutes and then cannot write its result has wasted those
minutes; a command killed while writing must not leave a half-written file that looks
finished. :func:`check_output_dir` and :func:`check_output_file` fail fast (before any
work) on a path that cannot be written; :class:`StagedOutput` collects a command's files in
a hidden folder beside the destination and moves them into place only when all of them are
written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from removalx.errors import OutputError, truncate

__all__ = ["StagedOutput", "check_output_dir", "check_output_file"]


def _shown(path: Path) -> str:
    return truncate(str(path), 200)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _probe_writable(folder: Path, what: str, target: Path) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".removalx-probe-", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"Cannot write {what} {_shown(target)}: {_shown(folder)} is not writable ({exc.strerror}).",
            "Choose a folder you can write to, or fix its permissions.",
        ) from None
    os.close(fd)
    os.unlink(name)


def check_output_dir(path: str | Path, what: str = "the output folder") -> Path:
    """Check that folder ``path`` can be created (if missing) and written; create nothing.

    Parameters
    ----------
    path : str or Path
        The folder a command will write into.
    what : str
        How messages name it (e.g. ``"--out"``).

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    OutputError
        ``path`` is an existing file, lies inside a file, or its nearest existing folder is
        not writable.
    """
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise OutputError(
            f"{what} {_shown(p)} is an existing file, not a folder.",
            "Pass a folder path (it is created if missing), or move the file away.",
        )
    base = _nearest_existing(p)
    if not base.is_dir():
        raise OutputError(
            f"Cannot create {what} {_shown(p)}: {_shown(base)} is a file, not a folder.",
            "Pass a path whose parents are folders.",
        )
    _probe_writable(base, what, p)
    return p


def check_output_file(path: str | Path, what: str = "the output file") -> Path:
    """Check that file ``path`` can be written (its folder created if missing); create nothing.

    Raises
    ------
    OutputError
        ``path`` is an existing folder, its parent lies inside a file, or is not writable.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputError(
            f"{what} {_shown(p)} is an existing folder, not a file.",
            "Pass the path of a file (it is created if missing), not a folder.",
        )
    check_output_dir(p.parent, what=f"the folder of {what}")
    return p


class StagedOutput:
    """Write a command's files into a hidden staging folder; move them into ``dest`` on success.

    Use as a context manager: ``stage.path`` is where to write; on a clean exit every file and
    folder written there replaces its namesake in ``dest``; on an exception nothing in
    ``dest`` changes and the staging folder is removed.

    Examples
    --------
    >>> with StagedOutput(out_dir) as stage:          # doctest: +SKIP
    ...     (stage.path / "summary.json").write_text("{}")
    """

    def __init__(self, dest: str | Path) -> None:
        self.dest = Path(dest)
        self._tmp: Path | None = None

    @property
    def path(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("StagedOutput.path is only available inside the `with` block")
        return self._tmp

    def __enter__(self) -> StagedOutput:
        self.dest.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=".removalx-partial-", dir=self.dest))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tmp = self.path
        try:
            if exc_type is None:
                for item in sorted(tmp.iterdir()):
                    target = self.dest / item.name
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    os.replace(item, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            self._tmp = None
