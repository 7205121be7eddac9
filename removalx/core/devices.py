"""Device names: validated once, before any work, with a message that says what exists here.

``--device`` (and ``device=`` of the model adapters and :class:`~removalx.core.classifier.VideoClassifier`)
accepts ``cpu``, ``cuda``, ``cuda:N``, ``mps`` and ``xpu``/``xpu:N``; a device this machine
does not have is a :class:`~removalx.errors.ModelError` naming the devices it does have.
"""

from __future__ import annotations

import torch

from removalx.errors import ModelError, truncate

__all__ = ["available_devices", "resolve_device"]

#: Device types removalx runs models on.
SUPPORTED_TYPES = ("cpu", "cuda", "mps", "xpu")


def available_devices() -> list[str]:
    """Names of the devices this machine can run a model on (``cpu`` first)."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        names += [f"xpu:{i}" for i in range(xpu.device_count())]
    return names


def _count(kind: str) -> int:
    if kind == "cuda":
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    if kind == "xpu":
        xpu = getattr(torch, "xpu", None)
        return xpu.device_count() if xpu is not None and xpu.is_available() else 0
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return 1 if mps is not None and mps.is_available() else 0
    return 1  # cpu


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Validate a device name; ``None`` means CUDA when available, else the CPU.

    Parameters
    ----------
    device : str, torch.device or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"xpu:0"``, or ``None``.

    Returns
    -------
    torch.device

    Raises
    ------
    ModelError
        The name is not a device, is a device type removalx does not run models on, or names
        a device this machine does not have (the message lists the ones it has).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    have = ", ".join(available_devices())
    fix = f"Pass one of the devices this machine has: {have}."
    if isinstance(device, torch.device):
        dev = device
    else:
        text = str(device).strip().lower()
        try:
            dev = torch.device(text)
        except (RuntimeError, TypeError, ValueError):
            raise ModelError(
                f"{truncate(str(device), 40)!r} is not a device name; expected cpu, cuda, cuda:N, mps or xpu.",
                fix,
            ) from None
    if dev.type not in SUPPORTED_TYPES:
        raise ModelError(f"removalx does not run models on device type {dev.type!r}.", fix)
    n = _count(dev.type)
    if n == 0:
        raise ModelError(
            f"device {str(dev)!r} was asked for, but this machine has no {dev.type} device.", fix
        )
    if dev.index is not None and dev.index >= n:
        raise ModelError(
            f"device {str(dev)!r} was asked for, but this machine has {n} {dev.type} device(s) "
            f"({dev.type}:0..{dev.type}:{n - 1}).",
            fix,
        )
    return dev
