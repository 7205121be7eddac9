"""``zoo``: the built-in demo models trained on synthetic clips with known evidence.

``zoo:r3d_tiny`` (default model of ``removalx explain``), ``zoo:cnn_gru``,
``zoo:timesformer_tiny`` (certain: p close to 1 on their clips), and their label-smoothed twins
``zoo:r3d_tiny_ls`` (default model of ``removalx compare``), ``zoo:cnn_gru_ls``,
``zoo:timesformer_tiny_ls`` (median top-1 probability about 0.78): see
:mod:`removalx.zoo.models` and ``docs/zoo.md``. ``zoo:bench_<task>_<arch>`` loads a
benchmark-task model with intervention-verified ground truth (``docs/zoo.md``, "Benchmark tasks").
"""

from __future__ import annotations

from removalx.plugin import ModelConfig, VideoClassifier, hookimpl


class ZooConfig(ModelConfig):
    """``target`` is the zoo model name; ``weights`` a folder with ``<name>.pt`` + ``.json``."""

    target: str = "r3d_tiny"


def make_zoo_model(config: ZooConfig) -> VideoClassifier:
    """Load a trained zoo model (it normalises and resizes its input itself)."""
    from removalx.plugin import load_zoo_model

    module, meta = load_zoo_model(config.target or "r3d_tiny", weights_dir=config.weights)
    return VideoClassifier(
        module,
        layout=meta.get("layout", "BCTHW"),
        device=config.device,
        class_names=meta.get("class_names"),
        name=f"zoo:{config.target}",
        clip_size=_clip_size(meta),
    )


def _clip_size(meta: dict) -> tuple[int, int, int] | None:
    """``(T, H, W)`` of the clips the model was trained on (``render_size`` = ``[T, side]``)."""
    render = meta.get("render_size")
    if isinstance(render, list) and len(render) == 2 and all(isinstance(v, int) and v > 0 for v in render):
        return render[0], render[1], render[1]
    return None


@hookimpl
def removalx_register_models(registry):  # type: ignore[no-untyped-def]
    registry.add("zoo", ZooConfig, make_zoo_model)
