"""Read a ``torch.save`` file without running code from it.

:func:`load_plain` calls ``torch.load(weights_only=True)``, which rebuilds tensors and plain
Python data (dicts, lists, numbers, strings) and refuses every other object a pickle could
name (``os.system`` and the like), and turns each failure into one clear
:class:`~removalx.errors.RemovalxError`.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from removalx.errors import RemovalxError, truncate

__all__ = ["load_plain"]


def _clip(text: object, n: int = 200) -> str:
    return truncate(str(text), n)


def _refused_detail(exc: BaseException) -> str:
    """The line of torch's message that names what was refused (not its advice to disable the check)."""
    for line in str(exc).splitlines():
        if "nsupported" in line or "allowed global" in line:
            return _clip(line.strip(), 200)
    return ""


def load_plain(path: str | Path, error: type[RemovalxError], what: str, fix: str) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with clear errors.

    Parameters
    ----------
    path : str or Path
        The file.
    error : type of RemovalxError
        Raised on failure (e.g. ``ModelError`` for weights, ``StorageError`` for results).
    what : str
        What the file is, for the message ``Cannot load {what}: ...`` (e.g.
        ``"weights file model.pt for r3d_18"``).
    fix : str
        How to fix a damaged file.

    Raises
    ------
    RemovalxError
        Of type ``error``: the file would need arbitrary objects unpickled (refused: that
        could run code from the file), or it is damaged / not a torch file.
    """
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _refused_detail(exc)
        if "global" not in detail.lower():  # an opcode the safe unpickler lacks: not a torch.save file
            raise error(
                f"Cannot load {what}: it is damaged or not a file written by torch.save "
                f"({detail or 'not a pickle'}).",
                fix,
            ) from exc
        raise error(
            f"Cannot load {what}: it needs Python objects other than tensors and plain data"
            f"{' (' + detail + ')' if detail else ''}; removalx does not unpickle them, since that can run "
            "code from the file.",
            fix,
        ) from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, ValueError, ... for damaged files
        raise error(
            f"Cannot load {what}: it is damaged or not a file written by torch.save "
            f"({type(exc).__name__}: {_clip(exc)}).",
            fix,
        ) from exc
