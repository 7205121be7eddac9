"""The plugin API: everything a plugin author imports, from one module.

A plugin is one module with a config class, a stage class and a ``@hookimpl`` registration
function (docs/plugins.md)::

    from removalx.plugin import PartitionSpace, PluginConfig, Segmenter, hookimpl

Built-in plugins (package ``removalx_plugins``) import removalx through this module alone,
like any third party's; import-linter holds that in CI (docs/architecture.md). Names are
grouped by what a plugin does with them:

- registration: :data:`hookimpl`;
- the seven stages' interfaces and their configs (:mod:`removalx.core.stages`), the data
  types (:mod:`removalx.core.types`), the colour-bar :class:`Legend`;
- the model contract :class:`VideoClassifier` (what ``Behavior.evaluate`` and the
  explainers receive);
- the errors to raise (:mod:`removalx.errors`; every one names what was expected, what
  was given and how to fix it);
- sample plans and coalitions for feature and sample selectors (:mod:`removalx.core.plans`,
  :mod:`removalx.core.coalitions`), counter-based random numbers (:mod:`removalx.core.rng`);
- helpers the built-in removal, explainer, model and metric plugins use: frame blurring
  (Gaussian kernels, separable blurs), weights-only tensor files, the zoo's and Hugging
  Face's model loaders, the perturbation-curve, pointing and saliency metric functions and
  the insertion/deletion presets.
"""

from __future__ import annotations

from removalx.core.classifier import LAYOUTS, VideoClassifier
from removalx.core.coalitions import (
    MAX_ENUMERATE_FEATURES,
    all_coalitions,
    check_one_per_feature,
    first_unique_rows,
    random_subsets,
    shapley_kernel_weight,
    subsets_of_size,
)
from removalx.core.hookspecs import hookimpl
from removalx.core.legend import N_COLOURS, Legend
from removalx.core.plans import (
    ChunkedPlan,
    ComputedPlan,
    LazyPlan,
    PlanChunk,
    SamplePlan,
    SizedLazyPlan,
    UnweightedLazyPlan,
    check_chunk_size,
    checked_rows,
)
from removalx.core.rng import hash_normal, hash_uniform
from removalx.core.stages import (
    MAX_SAMPLES,
    Behavior,
    BehaviorConfig,
    Explainer,
    FeatureSelector,
    Metric,
    ModelConfig,
    PluginConfig,
    Removal,
    SampleSelector,
    Segmenter,
    Summary,
    Visualizer,
    blend,
    channels_first_empty,
)
from removalx.core.types import Attribution, FeatureSpace, PartitionSpace
from removalx.errors import (
    ConfigError,
    DatasetError,
    MissingExtraError,
    ModelError,
    PluginError,
    RecipeError,
    RemovalxError,
    StorageError,
    TargetError,
    VideoError,
    require_extra,
    short_repr,
    truncate,
)
from removalx.files.torchfile import load_plain
from removalx.metrics import similarity
from removalx.metrics.axiomatic import completeness, input_invariance
from removalx.metrics.complexity import complexity, effective_complexity, sparseness
from removalx.metrics.faithfulness import faithfulness_correlation, infidelity, irof, sensitivity_n
from removalx.metrics.localization import spatial_pointing, temporal_pointing
from removalx.metrics.perturbation import Curve, cached_curve, minimal_mask
from removalx.metrics.presets import DEFAULT_PRESET, PRESET_FIELDS, PRESETS, preset_settings
from removalx.metrics.randomisation import emprt, mprt, random_logit
from removalx.metrics.road import noisy_linear_imputation, road
from removalx.metrics.robustness import explanation_robustness
from removalx.metrics.saliency import saliency_metric
from removalx.models.finetuned import finetuned_meta, prepare_module
from removalx.models.hf import load_hf_model
from removalx.video.filters import blur_frames, gaussian_kernel, separable_blur
from removalx.zoo.models import load_zoo_model
from removalx.zoo.recurrent import ReLULSTM, relu_lstm_gates

__all__ = [
    "DEFAULT_PRESET",
    "LAYOUTS",
    "MAX_ENUMERATE_FEATURES",
    "MAX_SAMPLES",
    "N_COLOURS",
    "PRESETS",
    "PRESET_FIELDS",
    "Attribution",
    "Behavior",
    "BehaviorConfig",
    "ChunkedPlan",
    "ComputedPlan",
    "ConfigError",
    "Curve",
    "DatasetError",
    "Explainer",
    "FeatureSelector",
    "FeatureSpace",
    "LazyPlan",
    "Legend",
    "Metric",
    "MissingExtraError",
    "ModelConfig",
    "ModelError",
    "PartitionSpace",
    "PlanChunk",
    "PluginConfig",
    "PluginError",
    "ReLULSTM",
    "RecipeError",
    "Removal",
    "RemovalxError",
    "SamplePlan",
    "SampleSelector",
    "Segmenter",
    "SizedLazyPlan",
    "StorageError",
    "Summary",
    "TargetError",
    "UnweightedLazyPlan",
    "VideoClassifier",
    "VideoError",
    "Visualizer",
    "all_coalitions",
    "blend",
    "blur_frames",
    "cached_curve",
    "channels_first_empty",
    "check_chunk_size",
    "check_one_per_feature",
    "checked_rows",
    "completeness",
    "complexity",
    "effective_complexity",
    "emprt",
    "explanation_robustness",
    "faithfulness_correlation",
    "finetuned_meta",
    "first_unique_rows",
    "gaussian_kernel",
    "hash_normal",
    "hash_uniform",
    "hookimpl",
    "infidelity",
    "input_invariance",
    "irof",
    "load_hf_model",
    "load_plain",
    "load_zoo_model",
    "minimal_mask",
    "mprt",
    "noisy_linear_imputation",
    "prepare_module",
    "preset_settings",
    "random_logit",
    "random_subsets",
    "relu_lstm_gates",
    "require_extra",
    "road",
    "saliency_metric",
    "sensitivity_n",
    "separable_blur",
    "shapley_kernel_weight",
    "short_repr",
    "similarity",
    "sparseness",
    "spatial_pointing",
    "subsets_of_size",
    "temporal_pointing",
    "truncate",
]
