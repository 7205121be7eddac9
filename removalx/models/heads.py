"""Find and replace the classification head (last layer) of a video model.

Fine-tuning (``removalx finetune``, :mod:`removalx.experiments.finetune`) swaps the last layer
for one with the data set's number of classes; loading the fine-tuned weights
(``--weights``) swaps it again, to the size the weights file records, before the strict load.

A head is an ``nn.Linear`` or a 1x1(x1) ``nn.Conv3d``/``nn.Conv2d`` (torchvision's S3D). It is
found at an explicit dotted path, or else at the first of :data:`HEAD_NAMES` the module has;
a ``Sequential`` there stands for its last Linear/Conv child (MViT's ``head``: dropout, linear).
"""

from __future__ import annotations

import torch
from torch import nn

from removalx.errors import ModelError, truncate

__all__ = ["HEAD_NAMES", "find_head", "head_classes", "swap_head"]

#: Attribute names searched for the head, in order: torchvision video models use ``fc``
#: (ResNet-3D), ``head`` (MViT, Swin3D) and ``classifier`` (S3D, Hugging Face models).
HEAD_NAMES = ("fc", "head", "classifier")

_HEAD_FIX = (
    "Expose the last layer as an attribute named fc, head or classifier (an nn.Linear, or a "
    "Sequential ending in one), or pass its dotted path (--head NAME, e.g. 'decoder.out')."
)


def _is_head(layer: nn.Module) -> bool:
    if isinstance(layer, nn.Linear):
        return True
    return isinstance(layer, (nn.Conv2d, nn.Conv3d)) and all(k == 1 for k in layer.kernel_size)


def _resolve(module: nn.Module, path: str) -> tuple[str, nn.Module] | None:
    """``(path, layer)`` at ``path``; a Sequential resolves to its last head-like child."""
    try:
        layer = module.get_submodule(path)
    except AttributeError:
        return None
    if isinstance(layer, nn.Sequential):
        for name, child in reversed(list(layer.named_children())):
            if _is_head(child):
                return f"{path}.{name}", child
        return None
    return (path, layer) if _is_head(layer) else None


def find_head(module: nn.Module, path: str | None = None) -> tuple[str, nn.Module]:
    """The classification head of ``module``: ``(dotted path, layer)``.

    Parameters
    ----------
    module : nn.Module
        The model.
    path : str, optional
        Dotted path of the head (default: the first of :data:`HEAD_NAMES` that exists).

    Raises
    ------
    ModelError
        No head at ``path`` (or at any of :data:`HEAD_NAMES`), or it is no Linear/1x1 Conv.
    """
    names = (path,) if path else HEAD_NAMES
    for name in names:
        found = _resolve(module, name)
        if found is not None:
            return found
    what = f"at {truncate(path, 80)!r}" if path else f"under any of {', '.join(HEAD_NAMES)}"
    raise ModelError(
        f"Cannot find the classification head of {type(module).__name__} {what}: expected an "
        "nn.Linear or a 1x1 convolution (or a Sequential ending in one).",
        _HEAD_FIX,
    )


def head_classes(layer: nn.Module) -> int:
    """Number of classes a head layer outputs."""
    return int(layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels)  # type: ignore[arg-type]


def _new_layer(old: nn.Module, num_classes: int) -> nn.Linear | nn.Conv2d | nn.Conv3d:
    if isinstance(old, nn.Linear):
        return nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    if isinstance(old, nn.Conv3d):
        return nn.Conv3d(old.in_channels, num_classes, kernel_size=1, bias=old.bias is not None)
    assert isinstance(old, nn.Conv2d)
    return nn.Conv2d(old.in_channels, num_classes, kernel_size=1, bias=old.bias is not None)


def swap_head(
    module: nn.Module,
    num_classes: int,
    *,
    path: str | None = None,
    init_std: float = 0.02,
    generator: torch.Generator | None = None,
) -> str:
    """Replace the head of ``module`` (in place) by a new layer with ``num_classes`` outputs.

    The new layer's weights are drawn from ``N(0, init_std^2)`` with ``generator`` (never
    torch's global random state) and its bias is zero; the layer keeps the old one's input
    size, kernel, device and dtype.

    Parameters
    ----------
    module : nn.Module
        The model, changed in place.
    num_classes : int
        Outputs of the new head (>= 1).
    path : str, optional
        Dotted path of the head (default: :func:`find_head`'s search).
    init_std : float, default 0.02
        Standard deviation of the new weights.
    generator : torch.Generator, optional
        Random source of the new weights (a CPU generator; default: a generator seeded 0).

    Returns
    -------
    str
        The dotted path of the replaced layer (stored with fine-tuned weights).
    """
    if isinstance(num_classes, bool) or int(num_classes) < 1:
        raise ModelError(f"num_classes must be >= 1, got {truncate(repr(num_classes), 40)}.")
    where, old = find_head(module, path)
    new = _new_layer(old, int(num_classes))
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    with torch.no_grad():
        w = torch.empty(new.weight.shape, dtype=torch.float32)
        w.normal_(0.0, float(init_std), generator=gen)
        new.weight.copy_(w)
        if new.bias is not None:
            new.bias.zero_()
    ref = old.weight
    assert isinstance(ref, torch.Tensor)
    new.to(device=ref.device, dtype=ref.dtype)
    parent_name, _, attr = where.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    setattr(parent, attr, new)
    return where
