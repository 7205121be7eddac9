"""``removalx explain``: one video, one recipe, one model -> attribution files and an overlay.

Everything a user can get wrong is checked before the long work starts (the output folder,
the formats, the recipe, the device, the model, the video), and the results are written
into ``--out`` only once all of them exist, so a failed or interrupted run leaves the folder
as it was. Defaults fit real files: the clip is spread over the whole video at the model's
native size (see ``docs/cli.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from removalx.cli.common import DEFAULT_FRAMES, DEFAULT_SIZE
from removalx.errors import ConfigError, TargetError, short_repr, truncate
from removalx.files.outputs import StagedOutput, check_output_dir

__all__ = ["clip_options", "original_options", "resolve_target", "run_explain"]

#: Overlay formats ``--format`` accepts.
FORMATS = ("gif", "mp4", "png")


def _formats(text: str | None) -> list[str]:
    if text is None:  # the default: MP4 where PyAV is installed, else GIF
        from removalx.display.output import default_formats

        return default_formats()
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(
            f"--format takes a comma-separated list of {', '.join(FORMATS)}; got {truncate(text, 60)!r}.",
            "Write e.g. --format gif,mp4.",
        )
    return list(dict.fromkeys(formats))


def resolve_target(
    text: str | None, class_names: list[str] | None, model_name: str = "the model"
) -> int | None:
    """The class index of ``--target``: an integer, or a class name of the model.

    Parameters
    ----------
    text : str or None
        The flag's value; ``None`` (top class) is returned as is.
    class_names : list of str or None
        The model's class names (``VideoClassifier.class_names``).
    model_name : str
        The model, for messages.

    Returns
    -------
    int or None
        The index (its range is checked against the model's logits later), or ``None``.

    Raises
    ------
    TargetError
        ``text`` is neither an integer nor one of ``class_names`` (the message lists them,
        truncated). A name matches exactly, else case-insensitively if only one name does.
    """
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        pass
    name = text.strip()
    if not class_names:
        raise TargetError(
            f"--target {short_repr(text, 60)}: {model_name} has no class names, so the target must be a "
            "class index.",
            "Pass --target N with N an integer in [0, number of classes), or omit --target for the top class.",
        )
    if name in class_names:
        return class_names.index(name)
    folded = [i for i, c in enumerate(class_names) if c.casefold() == name.casefold()]
    if len(folded) == 1:
        return folded[0]
    shown = truncate(", ".join(class_names), 400)
    raise TargetError(
        f"--target {short_repr(text, 60)} is neither a class index nor a class name of {model_name}; "
        f"its {len(class_names)} classes are: {shown}.",
        "Pass one of these names (quoted if it has spaces) or a class index 0.."
        f"{len(class_names) - 1}, or omit --target for the top class.",
    )


def clip_options(
    args: argparse.Namespace, clip_size: tuple[int, ...] | None, original: tuple[int, int]
) -> dict[str, Any]:
    """Keyword arguments of :func:`removalx.video.io.read_video` for the ``explain`` flags.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``explain`` flags.
    clip_size : tuple of int or None
        The model's native clip, ``(T, H, W)`` or ``(H, W)`` (``VideoClassifier.clip_size``).
    original : (int, int)
        ``(H, W)`` of the video's frames.

    Notes
    -----
    ``--size S`` (or the model's native side S): the short side is resized to S and the centre
    S x S crop is kept. A model without a native size gets the frames as they are, shrunk
    (aspect ratio kept) when the short side exceeds 112 px. Frames: ``--frames``, else the
    model's native length, else 16, spread over the whole video (or the ``--start/--duration``
    window), one from the middle of each equal segment, unless ``--stride`` asks for
    consecutive frames.
    """

    native_t = clip_size[0] if clip_size is not None and len(clip_size) == 3 else None
    native_side = min(clip_size[-2:]) if clip_size is not None else None
    side = args.size or native_side
    options: dict[str, Any] = {
        "frames": args.frames or native_t or DEFAULT_FRAMES,
        "start": args.start_frame,
        "start_time": args.start,
        "duration": args.duration,
    }
    if side is not None:
        options["size"] = (side, side)
    elif min(original) > DEFAULT_SIZE:
        options["size"], options["crop"] = DEFAULT_SIZE, "none"
    if args.stride is None:
        options["uniform"] = "centers"
    else:
        options["stride"] = args.stride
    return options


def original_options(options: dict[str, Any], original: tuple[int, int]) -> dict[str, Any]:
    """:func:`removalx.video.io.read_video` options that read the same frames and region as ``options``
    at the video's original resolution (the overlay is drawn there, the map upsampled).

    A centre crop ``S x S`` of the short side resized to ``S`` covers the centre square of side
    ``min(H, W)`` of the original frames; a shrunk whole frame covers the whole frame.
    """
    out = dict(options)
    size = out.pop("size", None)
    crop = out.pop("crop", "center")
    if isinstance(size, tuple) and crop == "center":
        side = min(original)
        out["size"] = (side, side)
    return out


def _domain_note(model_spec: str, video: str) -> str | None:
    """A one-line warning when a zoo demo model explains a file other than the bundled demo."""
    from removalx.zoo.data import DEMO_PATH

    adapter, sep, _ = model_spec.partition(":")
    if sep and adapter != "zoo":
        return None
    try:
        if Path(video).expanduser().resolve() == DEMO_PATH.resolve():
            return None
    except OSError:
        pass
    return (
        f"note: {model_spec} is a demo model trained on synthetic clips of a moving ring (classes "
        "moves_left/right/up/down); its explanation of another video shows what that toy model reacts to, "
        "not what a real classifier would. Pass your own model, e.g. --model torchvision:r3d_18 "
        "--weights r3d_18.pth (docs/models.md)."
    )


def run_explain(args: argparse.Namespace) -> int:
    """Run ``removalx explain`` with parsed ``args``; returns the exit code."""
    import numpy as np

    from removalx.display.visualize import overlay_frames, save_overlays
    from removalx.models import load_model
    from removalx.pipeline import Explainer
    from removalx.video.io import probe_video, read_video

    # 1. everything that can be checked without computing
    out = check_output_dir(args.out, what="--out")
    formats = _formats(args.format)
    explainer = Explainer.from_recipe(
        args.recipe,
        seed=args.seed,
        overrides=args.overrides,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    model = load_model(args.model, weights=args.weights, device=args.device)
    target = resolve_target(args.target, model.class_names, truncate(args.model, 80))
    clip: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if args.video is None:
        from removalx.zoo.data import demo_clip

        video, source, fps = demo_clip().video, "bundled demo clip", 8.0
    else:
        _, original = probe_video(args.video)
        options = clip_options(args, model.clip_size, original)
        video, info = read_video(args.video, **options)
        source, fps = str(args.video), float(info.fps or 8.0)
        clip = {
            "indices": list(info.indices),
            "n_frames": info.n_frames,
            "original_size": list(info.original),
        }
        if not args.quiet:
            t, h, w = (int(s) for s in video.shape[:3])
            span = f"frames {info.indices[0]}..{info.indices[-1]} of {info.n_frames}"
            print(
                f"clip: {t} frames ({span}), {info.original[0]}x{info.original[1]} -> {h}x{w}",
                file=sys.stderr,
            )
            note = _domain_note(args.model, source)
            if note:
                print(note, file=sys.stderr)

    # 2. the work
    attr = explainer.explain_clip(model, video, target=target)
    display = video
    if args.video is not None and getattr(args, "overlay_size", "original") == "original":
        display = read_video(args.video, **original_options(options, original))[0]

    # 3. all outputs staged, then moved into --out together
    with StagedOutput(out) as stage:
        attr.save(stage.path / "attribution.npz")
        np.save(stage.path / "attribution.npy", attr.values.numpy())
        written = save_overlays(overlay_frames(display, attr), stage.path, formats, fps=min(fps, 12.0))
        names = [str(p.relative_to(stage.path)) for p in written[:3]]
        summary: dict[str, Any] = {
            "video": source,
            "clip": {**clip, "size": list(video.shape[:3])},
            "overlay_size": list(display.shape[:3]),
            "model": args.model,
            "recipe": attr.meta["recipe"],
            "target": attr.target,
            "target_name": attr.meta.get("target_name"),
            "n_forward": attr.meta["n_forward"],
            "n_features": attr.meta.get("n_features"),
            "timings": attr.meta["timings"],
            "lower_is_important": attr.lower_is_important,
            "values_range": [float(attr.values.min()), float(attr.values.max())],
            "files": ["attribution.npz", "attribution.npy", *names],
        }
        if "adaptive" in attr.meta:
            summary["adaptive"] = {k: v for k, v in attr.meta["adaptive"].items() if k != "se"}
        (stage.path / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if args.quiet:
        print(out)
    else:
        t = attr.meta["timings"]
        name = f" ({attr.meta['target_name']})" if attr.meta.get("target_name") else ""
        print(
            f"explained class {attr.target}{name} of {source} with {explainer.recipe.name}: "
            f"{attr.meta['n_forward']} forward passes, {t['total']:.2f} s"
        )
        if "adaptive" in attr.meta:
            print(f"  {adaptive_line(attr.meta['adaptive'])}")
        for p in [
            out / "attribution.npz",
            out / "attribution.npy",
            out / "summary.json",
            *(out / n for n in names),
        ]:
            print(f"  wrote {p}")
    return 0


def adaptive_line(info: dict[str, Any]) -> str:
    """One line on adaptive sampling: samples used, largest standard error, tolerance met or not."""
    met = "met" if info.get("tolerance_met") else "NOT met (stopped at max_samples)"
    return (
        f"adaptive sampling: {info['samples_used']:,} of at most {info['max_samples']:,} samples in "
        f"{info['rounds']} rounds; largest standard error {info['max_se']:.3g} "
        f"({info['criterion']}), tolerance {info['tolerance']:.3g} {met}"
    )
