"""Benchmark tasks with model-verified ground truth (generators, interventions, trained models).

Five task families render ``uint8[N, 3, 16, 32, 32]`` clips with a ``bool[N, T, H, W]`` mask per
ground-truth part (:mod:`~removalx.zoo.bench.tasks`): temporal order, motion only, distractor,
AND / OR, and a planted shortcut with its twin. Small models of three architectures are trained
on them (:mod:`~removalx.zoo.bench.train`) and shipped only if interventions on held-out clips
(:mod:`~removalx.zoo.bench.interventions`) show that they use exactly their ground truth;
``zoo:bench_<task>_<arch>`` loads one (:data:`~removalx.zoo.bench.registry.SHIPPED`). See
``docs/zoo.md``, section "Benchmark tasks".
"""
