"""Registry of the benchmark tasks: generators, class names, parts and neutral fill.

Every task renders ``uint8[N, 3, 16, 32, 32]`` clips on a gray background; "removing" a
region in an intervention means painting it with the task's ``fill`` (the background gray,
:data:`~removalx.zoo.bench.render.NEUTRAL_FILL`, for every task here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from removalx.errors import ConfigError
from removalx.zoo.bench import distractor, logic, motion, shortcut, temporal_order
from removalx.zoo.bench.batch import BenchBatch
from removalx.zoo.bench.render import NEUTRAL_FILL

__all__ = ["TASKS", "BenchTask", "generate", "get_task"]


@dataclass(frozen=True)
class BenchTask:
    """One benchmark task.

    Attributes
    ----------
    name : str
        Registry key.
    description : str
        One line.
    class_names : tuple of str
        Label names (index = label).
    parts : tuple of str
        Names of the ground-truth part masks the generator returns.
    make : callable
        ``make(n, seed) -> BenchBatch``, deterministic in ``seed``.
    fill : int
        uint8 value that "removes" a region (the neutral fill).
    """

    name: str
    description: str
    class_names: tuple[str, ...]
    parts: tuple[str, ...]
    make: Callable[[int, int], BenchBatch]
    fill: int = NEUTRAL_FILL


TASKS: dict[str, BenchTask] = {
    t.name: t
    for t in (
        BenchTask(
            "temporal_order",
            "which of two squares changes colour first; every single frame has the same distribution",
            temporal_order.CLASS_NAMES,
            ("event_a", "event_b"),
            temporal_order.generate,
        ),
        BenchTask(
            "motion",
            "direction of the moving one of two identical textured squares (the other is static)",
            motion.CLASS_NAMES,
            ("moving", "static"),
            motion.generate,
        ),
        BenchTask(
            "distractor",
            "direction of a small low-contrast square next to a large checkerboard moving at random",
            distractor.CLASS_NAMES,
            ("evidence", "distractor"),
            distractor.generate,
        ),
        BenchTask(
            "and",
            "both a red and a blue square shown (AND)",
            logic.AND_CLASS_NAMES,
            ("part_a", "part_b"),
            logic.generate_and,
        ),
        BenchTask(
            "or",
            "a red or a blue square shown (OR)",
            logic.OR_CLASS_NAMES,
            ("part_a", "part_b"),
            logic.generate_or,
        ),
        BenchTask(
            "or_both",
            "OR clips whose class-1 clips all show both squares (for interventions)",
            logic.OR_CLASS_NAMES,
            ("part_a", "part_b"),
            partial(logic.generate_or, both_only=True),
        ),
        BenchTask(
            "shortcut",
            "direction of a small square; a corner patch is white exactly for class 1",
            shortcut.CLASS_NAMES,
            ("evidence", "patch"),
            partial(shortcut.generate, correlated=True),
        ),
        BenchTask(
            "shortcut_random",
            "as shortcut, but the corner patch colour is random (the twin's training data)",
            shortcut.CLASS_NAMES,
            ("evidence", "patch"),
            partial(shortcut.generate, correlated=False),
        ),
    )
}


def get_task(name: str) -> BenchTask:
    """The task called ``name``.

    Raises
    ------
    ConfigError
        If there is no such task.
    """
    if name not in TASKS:
        raise ConfigError(
            f"unknown benchmark task {name[:80]!r}.", f"Use one of: {', '.join(sorted(TASKS))}."
        )
    return TASKS[name]


def generate(name: str, n: int, seed: int, chunk: int = 250) -> BenchBatch:
    """``n`` clips of task ``name`` from seed ``seed``, rendered ``chunk`` clips at a time.

    Chunk ``k`` uses seed ``seed + k``, so memory stays bounded for large ``n``; the result
    depends only on ``(name, n, seed, chunk)``.

    Raises
    ------
    ConfigError
        If ``name`` is unknown or ``n`` / ``chunk`` are not positive.
    """
    task = get_task(name)
    if n < 1 or chunk < 1:
        raise ConfigError(f"n and chunk must be >= 1, got {n} and {chunk}.", "Use e.g. n=256, chunk=250.")
    batches = [task.make(min(chunk, n - start), seed + k) for k, start in enumerate(range(0, n, chunk))]
    return batches[0] if len(batches) == 1 else BenchBatch.concat(batches)
