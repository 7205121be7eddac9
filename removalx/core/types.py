"""Data contracts shared by every stage (docs/concepts.md).

* :class:`FeatureSpace` -- what segmentation returns: ``F`` features of a ``T x H x W`` clip,
  a way to turn coalitions ``z`` into pixel keep-masks (``render``) and a way to spread
  per-feature values back over pixels (``expand``).
* :class:`SamplePlan` -- what feature + sample selection return: ``Z`` in ``{0,1}^{S x F}``
  (1 = keep) and optional weights; defined with the other plans in :mod:`removalx.core.plans`.
* :class:`Attribution` -- what every method returns and what metrics / visualizers consume.

The seven-stage decomposition follows "removal-based video explanations", Sec. 3, Fig. 1.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from removalx.core.plans import ChunkedPlan, LazyPlan, PlanChunk, SamplePlan
from removalx.files.attribution_file import AttributionRecord, load_attribution, save_attribution

__all__ = [
    "Attribution",
    "ChunkedPlan",
    "FeatureSpace",
    "LazyPlan",
    "PartitionSpace",
    "PlanChunk",
    "SamplePlan",
]


class FeatureSpace(ABC):
    """``F`` interpretable features over a ``T x H x W`` clip.

    Subclasses implement :meth:`render` and :meth:`expand`. A *partition* (each pixel in
    exactly one feature) should subclass :class:`PartitionSpace`, which implements both by
    gather. Overlapping or soft spaces (sliding windows, RISE grids, flow tubes) compute
    masks with tensor products or interpolation.

    Attributes
    ----------
    n_features : int
        Number of features ``F``.
    shape : tuple of int
        ``(T, H, W)`` of the clip the space was built for.
    labels : Tensor or None
        ``long[T, H, W]`` feature index per pixel for partitions, else ``None``.
    meta : dict
        Anything the segmenter wants to expose (e.g. SLIC parameters, tube trajectories).
    """

    n_features: int
    shape: tuple[int, int, int]
    labels: Tensor | None = None
    meta: dict[str, Any]

    @abstractmethod
    def render(self, z: Tensor, index: Tensor | None = None) -> Tensor:
        """Turn coalitions into pixel keep-masks.

        Parameters
        ----------
        z : Tensor
            ``float[B, F]`` in ``[0, 1]``; 1 keeps a feature, 0 removes it.
        index : Tensor, optional
            ``long[B]`` position of each row in the sample plan. Spaces whose rendering is
            random per sample (RISE shifts) derive their randomness from it, so a sample
            renders the same whatever batch it is in.

        Returns
        -------
        Tensor
            ``float[B, T, H, W]`` in ``[0, 1]`` on ``z``'s device.
        """

    @abstractmethod
    def expand(self, values: Tensor) -> Tensor:
        """Spread per-feature values ``float[F]`` over pixels: ``float[T, H, W]``."""

    def to(self, device: torch.device | str) -> FeatureSpace:
        """Return the space with its tensors on ``device`` (default: no tensors, itself)."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_features={self.n_features}, shape={self.shape})"


class PartitionSpace(FeatureSpace):
    """A partition of the clip: every pixel belongs to exactly one feature.

    Rendering is a gather, ``keep[b, p] = z[b, labels[p]]``; expansion is ``values[labels]``.

    Parameters
    ----------
    labels : Tensor
        ``long[T, H, W]`` with values ``0 .. F-1``; every value must occur.
    meta : dict, optional
        Extra information exposed to users.
    """

    labels: Tensor  # never None for a partition

    def __init__(self, labels: Tensor, meta: dict[str, Any] | None = None) -> None:
        if labels.dim() != 3:
            from removalx.errors import PluginError

            raise PluginError(
                f"PartitionSpace expects labels of shape [T, H, W], got {tuple(labels.shape)}.",
                "Return one label per pixel from the segmenter.",
            )
        labels = labels.long()
        uniq, inverse = torch.unique(labels, return_inverse=True)
        if uniq.numel() == 0 or uniq[0] != 0 or uniq[-1] != uniq.numel() - 1:
            labels = inverse.view(labels.shape)  # relabel to 0..F-1, no empty features
        self.labels = labels
        self.n_features = int(labels.max().item()) + 1
        self.shape = (int(labels.shape[0]), int(labels.shape[1]), int(labels.shape[2]))
        self.meta = dict(meta or {})
        self._flat = labels.reshape(-1)

    def render(self, z: Tensor, index: Tensor | None = None) -> Tensor:
        flat = self._flat if self._flat.device == z.device else self._flat.to(z.device)
        return z.index_select(1, flat).view(z.shape[0], *self.shape)

    def expand(self, values: Tensor) -> Tensor:
        return values.to(self.labels.device)[self.labels]

    def sizes(self) -> Tensor:
        """``long[F]`` number of pixels in each feature."""
        return torch.bincount(self._flat, minlength=self.n_features)

    def to(self, device: torch.device | str) -> PartitionSpace:
        if self.labels.device == torch.device(device):
            return self
        return PartitionSpace(self.labels.to(device), self.meta)


@dataclass
class Attribution:
    """The result of any explanation method.

    Attributes
    ----------
    values : Tensor
        ``float32[T, H, W]`` on the CPU: the attribution of every pixel. Higher means more
        important unless ``meta["lower_is_important"]`` is true (3D Sampled Occlusion
        Sensitivity reports the prediction *with* the feature removed).
    feature_values : Tensor or None
        ``float32[F]`` per-feature values for feature-based methods.
    target : int
        Class explained.
    space : FeatureSpace or None
        The feature space the values refer to.
    meta : dict
        ``recipe``, ``seed``, ``timings`` (seconds per stage), ``n_forward`` (number of
        clips passed through the model), and whatever the stages add.
    video : Tensor or None
        The clip explained (``float32[T, H, W, 3]`` on the CPU), kept by
        :meth:`Explainer.explain` so that a notebook can show the overlay
        (:meth:`_repr_html_`); not saved to files.

    Notes
    -----
    Like shap's ``Explanation`` (``base_values``, ``values``) and Captum's
    ``visualize_image_attr``, an attribution tells its reference points
    (:attr:`base_value`, :attr:`prediction`, :attr:`target_name`) and draws itself
    (:meth:`plot`, :meth:`save` with an overlay format).
    """

    values: Tensor
    target: int
    feature_values: Tensor | None = None
    space: FeatureSpace | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    video: Tensor | None = field(default=None, repr=False, compare=False)

    def numpy(self) -> np.ndarray:
        """The values as ``float32[T, H, W]`` NumPy array (a copy)."""
        return self.values.detach().float().cpu().numpy().copy()

    def __repr__(self) -> str:
        """One line: method, target, shape and value range (at most about 200 characters)."""
        from removalx.errors import truncate

        recipe = self.meta.get("recipe")
        method = recipe.get("name") if isinstance(recipe, dict) else None
        name = self.meta.get("target_name")
        target = f"{self.target}" + (f" {truncate(str(name), 30)!r}" if name else "")
        shape = "x".join(str(int(s)) for s in self.values.shape)
        if self.values.numel():
            v = self.values.detach().float()
            rng = f"[{float(v.min()):.3g}, {float(v.max()):.3g}]"
        else:
            rng = "[]"
        parts = [truncate(str(method), 40)] if method else []
        parts += [f"target={target}", f"values=float32[{shape}] in {rng}"]
        if self.feature_values is not None:
            parts.append(f"features={int(self.feature_values.numel())}")
        if self.lower_is_important:
            parts.append("lower_is_important")
        return f"Attribution({', '.join(parts)})"

    def _repr_html_(self) -> str:
        """Jupyter: the animated overlay with its colour bar, and the repr.

        Drawn by the renderer that :mod:`removalx.display.notebook` registers with
        :func:`set_html_renderer` (importing ``removalx`` and using any of its names does); with
        none registered, the repr alone.
        """
        if _HTML_RENDERER is None:
            import html

            return f"<pre>{html.escape(repr(self))}</pre>"
        return _HTML_RENDERER(self)

    @property
    def base_value(self) -> float | None:
        """The output the attribution starts from: the model's behavior on the empty clip.

        shap's ``base_values``: the Shapley summary's ``v(empty)`` (``meta["summary"]["base_value"]``),
        else the empty clip's output the pipeline computed (``meta["base"]["empty"]``), in the
        units of the recipe's behavior (probability, logit ...). ``None`` when the method does
        not compute it (gradient explainers; summaries that do not ask for the empty clip).
        """
        summary = self.meta.get("summary")
        base = self.meta.get("base")
        for value in (
            summary.get("base_value") if isinstance(summary, dict) else None,
            base.get("empty") if isinstance(base, dict) else None,
        ):
            if isinstance(value, (int, float)):
                return float(value)
        return None

    @property
    def prediction(self) -> float | None:
        """The model's behavior on the whole clip for :attr:`target`.

        The full clip's output the pipeline computed (``meta["base"]["full"]``), else the Shapley
        summary's ``v(full)`` (``meta["summary"]["full_value"]``), in the units of the recipe's
        behavior. With :attr:`base_value` it bounds what the attributions explain (for Shapley
        values, ``sum(feature_values) = prediction - base_value``). ``None`` when the method
        does not compute it.
        """
        base = self.meta.get("base")
        summary = self.meta.get("summary")
        for value in (
            base.get("full") if isinstance(base, dict) else None,
            summary.get("full_value") if isinstance(summary, dict) else None,
        ):
            if isinstance(value, (int, float)):
                return float(value)
        return None

    @property
    def target_name(self) -> str | None:
        """The class name of :attr:`target` (``meta["target_name"]``), ``None`` when the model has none."""
        name = self.meta.get("target_name")
        return None if name is None else str(name)

    def plot(self, **options: Any) -> Any:
        """Draw the overlay with matplotlib: a grid of frames with the colour bar; returns the figure.

        Drawn by the plotter :mod:`removalx.display.views` registers
        (:func:`removalx.display.views.plot_attribution`, whose keyword arguments ``options``
        are: ``video``, ``visualization``, ``frames``, ``columns``, ``use_pyplot``). Needs
        matplotlib (``pip install 'removalx[report]'``; :class:`~removalx.errors.MissingExtraError`
        otherwise).
        """
        if _OVERLAY_VIEWS is None:
            raise _no_views("plot()")
        return _OVERLAY_VIEWS[1](self, **options)

    @property
    def lower_is_important(self) -> bool:
        return bool(self.meta.get("lower_is_important", False))

    def importance(self) -> Tensor:
        """Values oriented so that higher always means more important."""
        return -self.values if self.lower_is_important else self.values

    def save(self, path: str | Path, format: str | None = None, **options: Any) -> Path:
        """Write the attribution file (``.npz``), or the overlay as GIF, MP4 or PNG.

        ``format`` (default: the suffix of ``path``): ``"npz"`` writes values, feature values,
        partition labels, target and meta to a NumPy archive without pickled objects, written
        atomically (see :mod:`removalx.files.attribution_file`): ``meta`` is stored as JSON, so
        tensors in it come back as lists and values JSON cannot hold are dropped and named in
        ``meta["dropped_on_save"]``. ``"gif"``, ``"mp4"`` or ``"png"`` (one image: a grid of
        frames with the colour bar) write the overlay, drawn by the writer
        :mod:`removalx.display.views` registers (:func:`removalx.display.views.save_overlay`,
        whose keyword arguments ``options`` are: ``video``, ``visualization``, ``fps``,
        ``gif_budget``, ``min_panel``, ``columns``). Returns the path written.

        Raises
        ------
        ConfigError
            An unknown ``format``, or options given with ``npz``.
        """
        from removalx.errors import ConfigError, truncate

        fmt = (format if format is not None else Path(path).suffix.lstrip(".")).lower()
        if fmt in OVERLAY_FORMATS:
            if _OVERLAY_VIEWS is None:
                raise _no_views("save()")
            return Path(_OVERLAY_VIEWS[0](self, Path(path), fmt, **options))
        if format is not None and fmt != "npz":
            raise ConfigError(
                f"Attribution.save: expected format 'npz', {', '.join(repr(f) for f in OVERLAY_FORMATS)}; "
                f"got {truncate(str(format), 30)!r}.",
                "Pass format='npz' for the attribution file or 'gif' / 'mp4' / 'png' for the overlay.",
            )
        if options:
            raise ConfigError(
                f"Attribution.save to an .npz file takes no options; got {truncate(', '.join(options), 60)}.",
                "Drop them, or save an overlay (format='gif', 'mp4' or 'png') to use them.",
            )
        labels = getattr(self.space, "labels", None)
        record = AttributionRecord(
            values=self.values,
            target=int(self.target),
            feature_values=self.feature_values,
            labels=labels if isinstance(labels, Tensor) else None,
            meta=self.meta,
        )
        return save_attribution(record, path)

    @classmethod
    def load(cls, path: str | Path) -> Attribution:
        """Read a file written by :meth:`save` (the space is restored for partitions).

        Also reads the ``.pt`` files of removalx 0.x with ``torch.load(weights_only=True)``;
        nothing in the file is ever run. Raises :class:`~removalx.errors.StorageError` for a
        missing, damaged or foreign file.
        """
        record = load_attribution(path)
        space = None if record.labels is None else PartitionSpace(record.labels)
        return cls(
            values=record.values,
            target=record.target,
            feature_values=record.feature_values,
            space=space,
            meta=record.meta,
        )


#: Formats :meth:`Attribution.save` writes as an overlay (through the registered writer).
OVERLAY_FORMATS = ("gif", "mp4", "png")

#: ``(writer, plotter)`` of overlays (set by the display layer; see ``set_overlay_views``).
_OVERLAY_VIEWS: tuple[Callable[..., Path], Callable[..., Any]] | None = None


def set_overlay_views(writer: Callable[..., Path] | None, plotter: Callable[..., Any] | None) -> None:
    """Register how :meth:`Attribution.save` writes overlays and :meth:`Attribution.plot` draws.

    ``writer(attribution, path, fmt, **options) -> Path`` and ``plotter(attribution, **options)``;
    ``None`` for either unregisters both. The engine draws nothing itself:
    :mod:`removalx.display.views` registers them when it is imported (the ``removalx`` facade
    imports it with the first public name it loads).
    """
    global _OVERLAY_VIEWS
    _OVERLAY_VIEWS = None if writer is None or plotter is None else (writer, plotter)


def _no_views(what: str) -> Exception:
    from removalx.errors import ConfigError

    return ConfigError(
        f"Attribution.{what} needs the overlay views of removalx.display, which are not loaded.",
        "import removalx.display.views (importing removalx and using any of its names does it).",
    )


#: Draws an attribution as HTML for Jupyter (set by the display layer; see ``set_html_renderer``).
_HTML_RENDERER: Callable[[Attribution], str] | None = None


def set_html_renderer(renderer: Callable[[Attribution], str] | None) -> None:
    """Register how :meth:`Attribution._repr_html_` draws an attribution (``None``: the repr only).

    The engine draws nothing itself; :mod:`removalx.display.notebook` registers the animated
    overlay when it is imported.
    """
    global _HTML_RENDERER
    _HTML_RENDERER = renderer
