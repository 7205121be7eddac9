"""The container every benchmark-task generator returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from removalx.errors import ConfigError

__all__ = ["BenchBatch"]


@dataclass(frozen=True)
class BenchBatch:
    """Clips of one benchmark task with per-part ground-truth masks.

    Attributes
    ----------
    task : str
        Name of the task that generated the clips.
    video : torch.Tensor
        ``uint8[N, 3, T, H, W]`` (BCTHW, what the zoo models take after ``/ 255``).
    labels : torch.Tensor
        ``int64[N]``.
    parts : dict of str to torch.Tensor
        ``bool[N, T, H, W]`` per named part (e.g. ``event_a`` and ``event_b``); a part absent
        from a clip has an empty mask there.
    info : dict of str to torch.Tensor
        Per-clip generator latents (e.g. event times, which parts are present).
    """

    task: str
    video: torch.Tensor
    labels: torch.Tensor
    parts: dict[str, torch.Tensor]
    info: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def mask(self, names: Iterable[str]) -> torch.Tensor:
        """Union ``bool[N, T, H, W]`` of the named parts.

        Raises
        ------
        ConfigError
            If a name is not a part of this task.
        """
        names = list(names)
        unknown = [n for n in names if n not in self.parts]
        if unknown or not names:
            raise ConfigError(
                f"task {self.task!r} has no part(s) {str(unknown)[:80]}.",
                f"Use one or more of: {', '.join(sorted(self.parts))}.",
            )
        out = torch.zeros_like(self.parts[names[0]])
        for name in names:
            out |= self.parts[name]
        return out

    def subset(self, index: torch.Tensor) -> BenchBatch:
        """The clips at ``index`` (a ``bool[N]`` or ``int64`` index tensor)."""
        return BenchBatch(
            self.task,
            self.video[index],
            self.labels[index],
            {k: v[index] for k, v in self.parts.items()},
            {k: v[index] for k, v in self.info.items()},
        )

    @staticmethod
    def concat(batches: list[BenchBatch]) -> BenchBatch:
        """Concatenate batches of the same task along the clip axis."""
        first = batches[0]
        return BenchBatch(
            first.task,
            torch.cat([b.video for b in batches]),
            torch.cat([b.labels for b in batches]),
            {k: torch.cat([b.parts[k] for b in batches]) for k in first.parts},
            {k: torch.cat([b.info[k] for b in batches]) for k in first.info},
        )
