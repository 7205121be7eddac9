"""One-line messages around a long pipeline run: what will run, and how long it will take.

Both lines go to stderr through :func:`tqdm.tqdm.write` (so they do not break a progress
bar) and only when progress output is enabled (``progress=False`` / ``--quiet`` silences
them).

Every progress bar of removalx is :data:`tqdm` from here (:func:`bar_class`): tqdm.auto's bar
(a widget in Jupyter) when ipywidgets is installed, else the plain text bar, because without
ipywidgets tqdm.auto in Jupyter warns and falls back on every bar, flooding stderr.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import Any

__all__ = [
    "FirstBatchEstimate",
    "bar_class",
    "format_duration",
    "preflight_line",
    "tqdm",
    "write_line",
]


def bar_class() -> Any:
    """The progress-bar class: ``tqdm.auto.tqdm`` when ipywidgets is importable, else ``tqdm.std.tqdm``."""
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm as auto_bar

        return auto_bar
    from tqdm.std import tqdm as plain_bar

    return plain_bar


#: The progress bar every module of removalx uses (``from removalx.core.progress import tqdm``).
tqdm = bar_class()


def write_line(line: str) -> None:
    """Write one line to stderr without breaking an active tqdm bar."""
    tqdm.write(line, file=sys.stderr)


def format_duration(seconds: float) -> str:
    """A short human duration: ``0.8 s``, ``42 s``, ``2 min 10 s``, ``3 h 05 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def preflight_line(recipe: str, n_features: int, n_forward: int, batch_size: int, device: str) -> str:
    """What a pipeline run is about to do: ``lime3d: 200 features, 1,000 forward passes, ...``."""
    return (
        f"{recipe}: {n_features:,} features, {n_forward:,} forward passes, "
        f"batch size {batch_size}, device {device}"
    )


class FirstBatchEstimate:
    """Reports, once, the time the remaining forward passes will take after the first batch.

    Parameters
    ----------
    recipe : str
        Name shown at the start of the line.
    total : int
        Forward passes of the whole loop.
    enabled : bool
        Write the line at all (progress output on and forward passes to run).
    """

    def __init__(self, recipe: str, total: int, enabled: bool) -> None:
        self.recipe = recipe
        self.total = int(total)
        self.enabled = enabled
        self.line: str | None = None
        self._t0 = time.perf_counter()

    def start(self) -> None:
        """Start the clock (just before the first batch)."""
        self._t0 = time.perf_counter()

    def batch_done(self, rows: int) -> None:
        """Call after every batch of ``rows`` forward passes; acts after the first only."""
        if not self.enabled or self.line is not None:
            return
        elapsed = time.perf_counter() - self._t0
        remaining = self.total - int(rows)
        self.line = ""  # reported (or nothing to report): never again
        if remaining <= 0 or rows <= 0:
            return
        eta = elapsed * remaining / rows
        self.line = (
            f"{self.recipe}: ~{format_duration(eta)} for the remaining {remaining:,} forward passes "
            f"(first batch of {rows:,}: {format_duration(elapsed)})"
        )
        write_line(self.line)
