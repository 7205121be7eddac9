"""The benchmark models: which task trains them, which clips and interventions verify them.

Names are ``bench_<task>_<arch>`` with ``arch`` one of ``r3d`` (3D CNN,
:class:`~removalx.zoo.models.R3DTiny`), ``gru`` (CNN-RNN, :class:`~removalx.zoo.models.CNNGRU`)
and ``tsf`` (transformer, :class:`~removalx.zoo.models.TinyTimeSformer`), all with native input
16x32x32 and 2 classes. Weights live in ``removalx/zoo/weights/bench``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import nn

from removalx.zoo.architectures import CNNGRU, WEIGHTS_DIR, R3DTiny, TinyTimeSformer
from removalx.zoo.bench.interventions import Check
from removalx.zoo.bench.render import CLIP_SIZE

__all__ = [
    "ARCHS",
    "BENCH_MODELS",
    "BENCH_WEIGHTS_DIR",
    "BENCH_ZOO",
    "FAMILY_TRAINING",
    "SHIPPED",
    "BenchModel",
]

BENCH_WEIGHTS_DIR = WEIGHTS_DIR / "bench"

#: Architecture key -> (constructor with the benchmark input size, training defaults).
ARCHS: dict[str, tuple[Callable[..., nn.Module], dict[str, float | int]]] = {
    "r3d": (partial(R3DTiny, num_classes=2, input_size=CLIP_SIZE, width=8), {"lr": 3e-3, "epochs": 6}),
    "gru": (
        partial(CNNGRU, num_classes=2, input_size=CLIP_SIZE, width=8, hidden=48),
        {"lr": 3e-3, "epochs": 8},
    ),
    "tsf": (
        partial(TinyTimeSformer, num_classes=2, input_size=CLIP_SIZE, patch=4, dim=32, depth=2, heads=4),
        {"lr": 2e-3, "epochs": 10},
    ),
}

#: Per-family training overrides (the harder temporal-order task gets more clips and epochs).
FAMILY_TRAINING: dict[str, dict[str, int]] = {"temporal_order": {"epochs": 14, "n_train": 3000}}

_CHANCE_KEEP = {
    "temporal_order": (
        Check("remove", ("event_a", "event_b"), "chance"),
        Check("keep", ("event_a", "event_b"), "keep90"),
        Check("remove", ("event_a",), "chance"),
        Check("remove", ("event_b",), "chance"),
    ),
    "motion": (
        Check("remove", ("moving",), "chance"),
        Check("keep", ("moving",), "keep90"),
        Check("remove", ("static",), "keep90"),
    ),
    "distractor": (
        Check("remove", ("evidence",), "chance"),
        Check("keep", ("evidence",), "keep90"),
        Check("remove", ("distractor",), "keep90"),
    ),
    "and": (
        Check("remove", ("part_a",), "chance"),
        Check("remove", ("part_b",), "chance"),
        Check("remove", ("part_a", "part_b"), "chance"),
        Check("keep", ("part_a", "part_b"), "keep90"),
    ),
    "or": (
        Check("remove", ("part_a",), "keep90"),
        Check("remove", ("part_b",), "keep90"),
        Check("remove", ("part_a", "part_b"), "chance"),
        Check("keep", ("part_a", "part_b"), "keep90"),
    ),
    "shortcut": (
        Check("remove", ("patch",), "chance"),
        Check("keep", ("patch",), "keep90"),
        Check("remove", ("evidence",), "keep90"),
    ),
    "shortcut_twin": (
        Check("remove", ("patch",), "within5"),
        Check("remove", ("evidence",), "chance"),
        Check("keep", ("evidence",), "keep90"),
    ),
}


@dataclass(frozen=True)
class BenchModel:
    """A benchmark model: training task, verification task and checks, ground-truth parts."""

    name: str
    family: str
    arch: str
    train_task: str
    eval_task: str
    ground_truth: tuple[str, ...]
    checks: tuple[Check, ...]


_FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # family: (training task, held-out verification task, ground-truth parts)
    "temporal_order": ("temporal_order", "temporal_order", ("event_a", "event_b")),
    "motion": ("motion", "motion", ("moving",)),
    "distractor": ("distractor", "distractor", ("evidence",)),
    "and": ("and", "and", ("part_a", "part_b")),
    "or": ("or", "or_both", ("part_a", "part_b")),
    "shortcut": ("shortcut", "shortcut", ("patch",)),
    "shortcut_twin": ("shortcut_random", "shortcut", ("evidence",)),
}

BENCH_MODELS: dict[str, BenchModel] = {
    f"bench_{fam}_{arch}": BenchModel(f"bench_{fam}_{arch}", fam, arch, tr, ev, gt, _CHANCE_KEEP[fam])
    for arch in ARCHS
    for fam, (tr, ev, gt) in _FAMILIES.items()
}

#: Models whose weights are bundled: each passed every required intervention on held-out clips
#: (``tests/zoo/test_bench_interventions.py`` re-checks them on fresh clips). Others are not shipped.
SHIPPED: tuple[str, ...] = (
    "bench_temporal_order_r3d",
    "bench_motion_r3d",
    "bench_distractor_r3d",
    "bench_and_r3d",
    "bench_or_r3d",
    "bench_shortcut_r3d",
    "bench_shortcut_twin_r3d",
    "bench_motion_gru",
    "bench_distractor_gru",
    "bench_and_gru",
    "bench_or_gru",
    "bench_shortcut_gru",
    "bench_shortcut_twin_gru",
    "bench_motion_tsf",
    "bench_distractor_tsf",
    "bench_and_tsf",
    "bench_or_tsf",
    "bench_shortcut_tsf",
    "bench_shortcut_twin_tsf",
)

#: Zoo-style registry entries (name -> constructor, description) of the shipped models, merged into
#: ``removalx.zoo.models`` so that ``zoo:<name>`` loads them.
BENCH_ZOO: dict[str, tuple[Callable[..., nn.Module], str]] = {
    name: (
        ARCHS[BENCH_MODELS[name].arch][0],
        f"benchmark task {BENCH_MODELS[name].family!r}; ground truth: {'+'.join(BENCH_MODELS[name].ground_truth)}",
    )
    for name in SHIPPED
}
