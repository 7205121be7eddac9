"""Machinery the built-in plugins share, kept beside them.

Captum-based gradients, extremal perturbations, Excitation Backprop, the minimal
preservation ratio, temporal smoothing, streamed Shapley pairs, weighted least squares and
colour maps. Only ``removalx_plugins`` imports these modules; like every built-in plugin they
import removalx through its plugin API, :mod:`removalx.plugin`, alone.
"""
