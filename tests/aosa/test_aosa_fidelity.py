"""AOSA fidelity: Eq. 2 (literal and as the authors' code computes it), conditional sampling with
the full patch covariance, averaging over draws, integer tracking, and the recipes' choices.

Every expected number below is computed by hand from the equation (written out in comments),
not by the code under test.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import removalx
from removalx.core.recipe import load_recipe
from removalx.errors import ConfigError
from removalx.testing import ToyClassifier
from removalx_plugins.removal.conditional import Conditional, ConditionalConfig
from removalx_plugins.segmentation.flow_tubes import FlowTubes, FlowTubesConfig, track_anchors
from removalx_plugins.selection.cooccurrence import Cooccurrence, CooccurrenceConfig
from removalx_plugins.summary.aosa_map import AosaMap, AosaMapConfig

# -- Eq. 2 on 2 features, 3 masks, 3 pixels -------------------------------------------------------
# Pixel p0 belongs to feature 0, p1 to feature 1, p2 to no feature (never occluded).
# mask 1 removes feature 0, mask 2 removes feature 1, mask 3 removes both.
Z = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
KEEP = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]).view(3, 1, 1, 3)
Y = torch.tensor([0.2, 0.7, 0.1])  # f(occluded clip i)
FX = 0.9  # f(x), the clean clip


def _map(formula: str, normalize: str = "coverage", batches: tuple[slice, ...] = (slice(0, 3),)):
    s = AosaMap(AosaMapConfig(formula=formula, normalize=normalize))
    s.begin(SimpleNamespace(n_features=2), None, {"full": FX})  # type: ignore[arg-type]
    for b in batches:
        s.update(Z[b], KEEP[b], Y[b], None)
    values, fv = s.finalize(None)  # type: ignore[arg-type]
    return values.flatten().tolist(), fv.tolist()


def test_eq2_literal_by_hand():
    # S(p) = 1/N sum_i y_i keep_i(p), N = 3
    # p0: kept by mask 2 only -> 0.7 / 3; p1: kept by mask 1 only -> 0.2 / 3;
    # p2: kept by all -> (0.2 + 0.7 + 0.1) / 3 = 1 / 3  (the never-occluded pixel ranks highest)
    values, fv = _map("eq2_literal")
    assert values == pytest.approx([0.7 / 3, 0.2 / 3, 1.0 / 3], abs=1e-6)
    # features: feature 0 kept by mask 2 -> 0.7 / 3; feature 1 kept by mask 1 -> 0.2 / 3
    assert fv == pytest.approx([0.7 / 3, 0.2 / 3], abs=1e-6)
    assert max(range(3), key=lambda p: values[p]) == 2


def test_eq2_centred_by_hand():
    # S(p) = 1/N sum_i (y_i - f(x)) keep_i(p) / mean(keep_i)
    # y - f = [-0.7, -0.2, -0.8]; mean(keep) = [2/3, 2/3, 1/3]; weights w = [-1.05, -0.3, -2.4]
    # p0: w2 / 3 = -0.1; p1: w1 / 3 = -0.35; p2: (w1 + w2 + w3) / 3 = -3.75 / 3 = -1.25
    # then mapped linearly onto the drops' range [0.2, 0.8] (drops f - y = 0.7, 0.2, 0.8):
    # p0 (max) -> 0.8; p2 (min) -> 0.2; p1 -> 0.2 + (-0.35 + 1.25) / 1.15 * 0.6 = 0.2 + 0.54 / 1.15
    values, fv = _map("eq2_centred")
    assert values == pytest.approx([0.8, 0.2 + 0.54 / 1.15, 0.2], abs=1e-6)
    # features: mean(z) = [1/2, 1/2, 0] -> weights [-1.4, -0.4, 0 (mask keeps nothing)]
    # feature 0 kept by mask 2: -0.4 / 3; feature 1 kept by mask 1: -1.4 / 3 -> onto [0.2, 0.8]
    assert fv == pytest.approx([0.8, 0.2], abs=1e-6)
    # streaming: one batch or two give the same map
    assert _map("eq2_centred", batches=(slice(0, 1), slice(1, 3)))[0] == pytest.approx(values, abs=1e-7)


def test_occlusion_difference_by_hand():
    # S(p) = sum_i (f(x) - y_i) occ_i(p) / sum_i occ_i(p); drops d = [0.7, 0.2, 0.8]
    # p0 occluded by masks 1, 3: (0.7 + 0.8) / 2; p1 by masks 2, 3: (0.2 + 0.8) / 2; p2 never: 0
    values, fv = _map("occlusion_difference")
    assert values == pytest.approx([0.75, 0.5, 0.0], abs=1e-6)
    assert fv == pytest.approx([0.75, 0.5], abs=1e-6)
    # normalize: n -> the same sums divided by N = 3
    values_n, _ = _map("occlusion_difference", normalize="n")
    assert values_n == pytest.approx([1.5 / 3, 1.0 / 3, 0.0], abs=1e-6)


def test_normalize_n_belongs_to_occlusion_difference(reg):
    with pytest.raises(ConfigError, match="occlusion_difference"):
        reg.make("summary", "aosa_map", {"formula": "eq2_literal", "normalize": "n"})


# -- conditional sampling (Sec. 3.4): the Gaussian of the neighbouring patches ---------------------
ROW = [0.1, 0.5, 0.2, 0.9, 0.4, 0.6, 0.3, 0.8, 0.7]


def _row_removal(covariance: str) -> tuple[Conditional, torch.Tensor]:
    """A 1 x 9 grey frame, 1 x 5 patches in a 9-wide region: shifts s in {-2, -1, 1, 2}."""
    video = torch.tensor(ROW).view(1, 1, 9, 1)
    rm = Conditional(ConditionalConfig(patch_size=(1, 5), region=9, covariance=covariance, clip=False))
    rm.prepare(video, None, seed=5)  # type: ignore[arg-type]
    return rm, video


def test_patch_gaussian_by_hand():
    rm, video = _row_removal("patch")
    # pixel 3: neighbours x[1], x[2], x[4], x[5] = 0.5, 0.2, 0.4, 0.6 -> mu = 0.425
    #   centred 0.075, -0.225, -0.025, 0.175 -> var = 0.0875 / 4 = 0.021875
    # pixel 4: neighbours x[2], x[3], x[5], x[6] = 0.2, 0.9, 0.6, 0.3 -> mu = 0.5
    #   centred -0.3, 0.4, 0.1, -0.2 -> var = 0.3 / 4 = 0.075
    # cov(3, 4) = 1/4 sum_s (x[3+s] - mu3)(x[4+s] - mu4)
    #   = (0.075 * -0.3 + -0.225 * 0.4 + -0.025 * 0.1 + 0.175 * -0.2) / 4 = -0.15 / 4 = -0.0375
    mu3, mu4, var3, var4, cov34 = 0.425, 0.5, 0.021875, 0.075, -0.0375
    assert float(rm.mu[0, 0, 3, 0]) == pytest.approx(mu3, abs=1e-6)
    assert float(rm.mu[0, 0, 4, 0]) == pytest.approx(mu4, abs=1e-6)
    assert float(rm.sigma[0, 0, 3, 0]) ** 2 == pytest.approx(var3, abs=1e-6)
    assert float(rm.sigma[0, 0, 4, 0]) ** 2 == pytest.approx(var4, abs=1e-6)
    keep = torch.zeros(1, 1, 1, 9)
    n = 20000
    draws = torch.cat([rm.fill(video, keep, torch.arange(i, i + 2000)) for i in range(0, n, 2000)])
    v = draws[:, 0, 0, 3:5, 0].double()  # pixels 3 and 4 over n draws
    emp_mu = v.mean(0)
    emp_cov = torch.cov(v.T)
    se = 4 / n**0.5
    assert float(emp_mu[0]) == pytest.approx(mu3, abs=se * var3**0.5)
    assert float(emp_mu[1]) == pytest.approx(mu4, abs=se * var4**0.5)
    assert float(emp_cov[0, 0]) == pytest.approx(var3, rel=0.05)
    assert float(emp_cov[1, 1]) == pytest.approx(var4, rel=0.05)
    assert float(emp_cov[0, 1]) == pytest.approx(cov34, rel=0.05)  # correlation -0.93
    # the diagonal model has the same marginals and no correlation (independent noise per pixel
    # and sample: tests/test_substrates.py checks its moments against 1/sqrt(n) tolerances)
    tall = video.expand(1, 64, 9, 1).contiguous()
    rd = Conditional(ConditionalConfig(patch_size=(1, 5), region=9, covariance="diagonal", clip=False))
    rd.prepare(tall, None, seed=5)  # type: ignore[arg-type]
    d = torch.cat([rd.fill(tall, keep, torch.arange(i, i + 2000)) for i in range(0, n, 2000)])
    dc = torch.cov(d[:, 0, 30, 3:5, 0].double().T)
    assert float(dc[1, 1]) == pytest.approx(var4, rel=0.15)
    assert abs(float(dc[0, 1])) / (var3 * var4) ** 0.5 < 0.15


def test_patch_draws_have_the_brute_force_patch_covariance():
    g = torch.Generator().manual_seed(2)
    video = torch.rand(2, 12, 12, 2, generator=g)
    h = w = 3
    region = 7
    rm = Conditional(ConditionalConfig(patch_size=(h, w), region=region, clip=False))
    rm.prepare(video, None, seed=1)  # type: ignore[arg-type]
    ay, ax = 6, 5  # anchor; occluded patch rows 5..7, cols 4..6
    top, left = ay - h // 2, ax - w // 2
    patches = []  # patches of the occluder's size containing the anchor, inside the region, not the occluded one
    for y0 in range(ay - region // 2, ay - region // 2 + region - h + 1):
        for x0 in range(ax - region // 2, ax - region // 2 + region - w + 1):
            if y0 <= ay < y0 + h and x0 <= ax < x0 + w and (y0, x0) != (top, left):
                patches.append(video[1, y0 : y0 + h, x0 : x0 + w].flatten())  # frame 1, h*w*C values
    p = torch.stack(patches).double()
    mu = p.mean(0)
    sigma = (p - mu).T @ (p - mu) / p.shape[0]  # the paper's Sigma (over pixels and channels)
    keep = torch.zeros(1, 2, 12, 12)
    draws = torch.cat([rm.fill(video, keep, torch.arange(i, i + 1000)) for i in range(0, 30000, 1000)])
    v = draws[:, 1, top : top + h, left : left + w].reshape(draws.shape[0], -1).double()
    assert torch.allclose(v.mean(0), mu, atol=0.01)
    assert float((torch.cov(v.T) - sigma).abs().max()) < 0.06 * float(sigma.diagonal().max())


# -- averaging over draws ---------------------------------------------------------------------------
def test_cooccurrence_draws_repeat_each_mask():
    sel = Cooccurrence(CooccurrenceConfig(k=1, draws=3))
    sel.partners = torch.tensor([[1], [2], [0]])
    assert sel.max_samples(3) == 9
    plan = sel.plan(3, None, torch.Generator())
    z = plan.materialize().z
    one = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # tube i and its partner removed
    assert torch.equal(z, one.repeat_interleave(3, dim=0))
    assert plan.meta["draws"] == 3
    with pytest.raises(ConfigError, match="9 samples"):
        sel.plan(3, 3, torch.Generator())


def test_aosa_cs_map_is_eq2_of_the_score_averaged_over_draws(reg):
    g = torch.Generator().manual_seed(0)
    video = (0.3 + 0.4 * torch.rand(4, 24, 24, 3, generator=g)).clamp(0, 1)
    model = removalx.VideoClassifier(ToyClassifier(n_classes=2, seed=3))
    ov = {
        "segmentation.stride": 8,
        "segmentation.mask_size": [8, 8],
        "feature_selection.k": 2,
        "feature_selection.draws": 3,
        "removal.region": 14,
    }
    attr = removalx.Explainer.from_recipe(
        "aosa_cs", seed=0, overrides=ov, registry=reg, progress=False
    ).explain(model, video, target=0, batch_size=4)
    # oracle: the same masks and draws, scored one by one, averaged per mask, Eq. 2 by a loop
    space = FlowTubes(FlowTubesConfig(stride=8, mask_size=(8, 8))).segment(video, torch.Generator())
    sel = Cooccurrence(CooccurrenceConfig(k=2, draws=3))
    sel.bind(space)
    z = sel.plan(space.n_features, None, torch.Generator()).materialize().z
    rm = Conditional(ConditionalConfig(region=14))
    rm.prepare(video, space, seed=0)
    with torch.no_grad():
        fx = float(model(video[None]).softmax(-1)[0, 0])
        ys = []
        for r in range(z.shape[0]):
            keep = space.render(z[r : r + 1])
            ys.append(float(model(rm.apply(video, keep, torch.tensor([r]))).softmax(-1)[0, 0]))
    ys_t = torch.tensor(ys, dtype=torch.float64).view(-1, 3)
    assert float(ys_t.std(1).max()) > 0  # the draws differ
    n = space.n_features
    raw = torch.zeros(space.shape, dtype=torch.float64)
    for i in range(n):
        keep = space.render(z[3 * i : 3 * i + 1])[0].double()
        raw += (float(ys_t[i].mean()) - fx) * keep / keep.mean()
    raw /= n
    drops = fx - ys_t.mean(1)  # per mask, averaged over its draws
    lo, hi = float(drops.min()), float(drops.max())
    expected = lo + (raw - raw.min()) / (raw.max() - raw.min()) * (hi - lo)
    assert torch.allclose(attr.values.double(), expected, atol=1e-6)
    assert attr.meta["n_samples"] == 3 * n


# -- tracking ---------------------------------------------------------------------------------------
def test_integer_tracking_rounds_every_frame():
    flow = torch.zeros(3, 16, 16, 2)
    flow[..., 0] = 1.6  # 1.6 px/frame to the right
    anchors = torch.tensor([[4.0, 4.0], [12.0, 8.0]])
    sub, alive_s = track_anchors(anchors, flow, "stop", "subpixel")
    assert sub[0, :, 0].tolist() == pytest.approx([4.0, 5.6, 7.2, 8.8])
    integer, alive_i = track_anchors(anchors, flow, "stop", "integer")
    # round(4 + 1.6) = 6, round(6 + 1.6) = 8, round(8 + 1.6) = 10
    assert integer[0, :, 0].tolist() == [4.0, 6.0, 8.0, 10.0]
    # anchor 2: 12 -> 14 (13.6 inside) -> 15.6 > 15 leaves the frame: stopped, frozen at 14
    assert integer[1, :, 0].tolist() == [12.0, 14.0, 14.0, 14.0]
    assert alive_i[1].tolist() == [True, True, False, False]
    assert alive_s[1].tolist() == [True, True, False, False]


# -- the recipes' choices ---------------------------------------------------------------------------
def test_recipes_follow_the_paper():
    for name in (
        "aosa",
        "aosa_sgl",
        "osa3d",
    ):  # Eq. 2 as the released code runs it: the normalised input masked
        r = load_recipe(name)
        assert r.removal.name == "constant" and r.removal.value == "model_mean"
        assert r.summary.formula == "eq2_centred"
    for name in ("aosa_approx", "aosa_sgl_approx"):  # Sec. 3.5.2 / 4.1: conditional mean, 36 x 36
        r = load_recipe(name)
        assert r.removal.name == "conditional" and r.removal.region == 36
        assert r.behavior.expectation and r.behavior.adjust and r.behavior.iqr_factor == 1.5
    assert [
        load_recipe(n).feature_selection.k for n in ("aosa", "aosa_sgl", "aosa_approx", "aosa_sgl_approx")
    ] == [5, 0, 5, 0]
    cs = load_recipe("aosa_cs")
    assert cs.removal.covariance == "patch" and cs.feature_selection.draws == 10
