"""ROAD: the noisy linear imputation (2D and space-time) and the curve; Quantus 0.6.0 as an oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from removalx.core.classifier import VideoClassifier
from removalx.errors import ConfigError
from removalx.metrics.road import neighbour_weights, noisy_linear_imputation, removal_masks, road
from removalx.testing.data import ToyClassifier, tiny_video


def _ramp(t: int, h: int, w: int) -> torch.Tensor:
    """A clip linear in (t, y, x): every symmetric weighted mean reproduces it exactly."""
    tt, yy, xx = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    v = 0.1 + 0.02 * tt + 0.03 * yy + 0.01 * xx
    return torch.stack([v, 1 - v], dim=-1).double()


@pytest.mark.parametrize("hood", ["2d", "6", "26"])
def test_a_linear_clip_is_imputed_exactly_inside(hood: str) -> None:
    clip = _ramp(5, 7, 7)
    removed = torch.zeros(5, 7, 7, dtype=torch.bool)
    removed[1:4, 2:5, 2:5] = True  # interior block: no border pixel
    out = noisy_linear_imputation(clip, removed, neighbourhood=hood, noise=0.0)  # type: ignore[arg-type]
    assert torch.allclose(out, clip, atol=1e-10)


def test_weights_sum_to_one_and_keep_the_papers_ratio() -> None:
    for hood in ("2d", "6", "26"):
        assert sum(w for _, w in neighbour_weights(hood)) == pytest.approx(1.0)  # type: ignore[arg-type]
    w26 = dict(neighbour_weights("26"))
    assert w26[(0, 0, 1)] == pytest.approx(2 * w26[(0, 1, 1)]) == pytest.approx(4 * w26[(1, 1, 1)])
    assert len(neighbour_weights("26")) == 26 and all(o[0] == 0 for o, _ in neighbour_weights("2d"))


def test_single_pixel_is_the_mean_of_its_neighbours() -> None:
    g = torch.Generator().manual_seed(0)
    clip = torch.rand(3, 4, 4, 1, generator=g).double()
    removed = torch.zeros(3, 4, 4, dtype=torch.bool)
    removed[1, 1, 2] = True
    six = noisy_linear_imputation(clip, removed, neighbourhood="6", noise=0.0)[1, 1, 2, 0]
    nb = [clip[0, 1, 2], clip[2, 1, 2], clip[1, 0, 2], clip[1, 2, 2], clip[1, 1, 1], clip[1, 1, 3]]
    assert float(six) == pytest.approx(float(sum(nb)) / 6, abs=1e-12)
    flat = noisy_linear_imputation(clip, removed, neighbourhood="2d", noise=0.0)[1, 1, 2, 0]
    f = clip[1, :, :, 0]
    direct = f[0, 2] + f[2, 2] + f[1, 1] + f[1, 3]
    diag = f[0, 1] + f[0, 3] + f[2, 1] + f[2, 3]
    assert float(flat) == pytest.approx(float(direct / 6 + diag / 12), abs=1e-12)


def test_a_frame_with_no_known_neighbour_gets_the_known_mean() -> None:
    clip = torch.rand(2, 4, 4, 3, generator=torch.Generator().manual_seed(1))
    removed = torch.zeros(2, 4, 4, dtype=torch.bool)
    removed[1] = True  # the whole frame: no equation pins it under the per-frame graph
    out = noisy_linear_imputation(clip, removed, neighbourhood="2d", noise=0.0)
    assert torch.allclose(out[1], clip[0].mean(dim=(0, 1)).expand(4, 4, 3), atol=1e-6)
    st = noisy_linear_imputation(clip.double(), removed, neighbourhood="6", noise=0.0)  # pinned by frame 0
    for y in range(
        4
    ):  # every imputed pixel is the mean of its in-clip face neighbours (the defining equation)
        for x in range(4):
            nbs = [
                (t, yy, xx)
                for t, yy, xx in [(0, y, x), (1, y - 1, x), (1, y + 1, x), (1, y, x - 1), (1, y, x + 1)]
            ]
            vals = [st[t, yy, xx] for t, yy, xx in nbs if 0 <= yy < 4 and 0 <= xx < 4]
            assert torch.allclose(st[1, y, x], torch.stack(vals).mean(0), atol=1e-10)


def test_noise_is_seeded_and_has_the_given_std() -> None:
    clip = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(2))
    removed = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(3)) < 0.5
    clean = noisy_linear_imputation(clip, removed, noise=0.0)
    a = noisy_linear_imputation(clip, removed, noise=0.05, generator=torch.Generator().manual_seed(9))
    b = noisy_linear_imputation(clip, removed, noise=0.05, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    diff = (a - clean)[removed]
    assert float(diff.std()) == pytest.approx(0.05, rel=0.1)
    assert torch.equal(a[~removed], clip[~removed])
    cg = noisy_linear_imputation(clip, removed, noise=0.0, solver="cg")
    assert torch.allclose(cg, clean, atol=1e-6)


def test_imputation_matches_quantus_in_2d() -> None:
    pytest.importorskip("quantus")
    from quantus.functions.perturb_func import noisy_linear_imputation as quantus_nli

    g = np.random.default_rng(0)
    img = g.random((3, 12, 10))
    idx = g.choice(120, 70, replace=False)
    theirs = quantus_nli(img.copy(), idx, noise=0.0)  # type: ignore[arg-type]
    removed = torch.zeros(120, dtype=torch.bool)
    removed[torch.from_numpy(idx)] = True
    ours = noisy_linear_imputation(
        torch.from_numpy(img).permute(1, 2, 0)[None], removed.view(1, 12, 10), noise=0.0
    )
    assert np.abs(ours[0].permute(2, 0, 1).numpy() - theirs).max() < 1e-6


def test_road_correct_curve_matches_quantus_with_no_noise() -> None:
    quantus = pytest.importorskip("quantus")
    torch.manual_seed(0)  # test-only model initialisation
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 64, 3)).eval()
    g = torch.Generator().manual_seed(4)
    video, imp = torch.rand(1, 8, 8, 1, generator=g), torch.randn(1, 8, 8, generator=g)
    target = int(net(video[..., 0][:, None]).argmax())
    pct = [5, 15, 35, 55, 75, 95]
    model = VideoClassifier(lambda x: net(x[:, 0].permute(0, 3, 1, 2)), layout="BTHWC")
    ours = road(model, video, imp, target, percentages=[p / 100 for p in pct], noise=0.0)
    metric = quantus.ROAD(percentages=pct, noise=0.0, normalise=False, disable_warnings=True)
    x = video[..., 0].numpy()[:, None]
    theirs = metric(
        model=net, x_batch=x, y_batch=np.array([target]), a_batch=imp.numpy()[:, None], device="cpu"
    )
    assert [bool(theirs[p]) for p in pct] == ours["correct"]
    assert ours["n_forward"] == len(pct) + 1


def test_road_morf_masks_and_orders() -> None:
    imp = torch.arange(10.0).view(1, 2, 5)
    morf = removal_masks(imp, [0.3], "morf", 0)[0].reshape(-1)
    lerf = removal_masks(imp, [0.3], "lerf", 0)[0].reshape(-1)
    assert morf.nonzero().view(-1).tolist() == [7, 8, 9] and lerf.nonzero().view(-1).tolist() == [0, 1, 2]


def test_road_on_a_video_space_time_is_seeded() -> None:
    model, video = VideoClassifier(ToyClassifier(3)), tiny_video(4, 12)
    imp = torch.rand(4, 12, 12, generator=torch.Generator().manual_seed(5))
    one = road(model, video, imp, 1, neighbourhood="26", order="lerf", seed=3)
    two = road(model, video, imp, 1, neighbourhood="26", order="lerf", seed=3)
    assert one["value"] == two["value"] and len(one["curve"]["y"]) == 7
    assert 0.0 <= one["value"] <= 1.0


def test_road_plugin_and_bad_settings() -> None:
    import removalx

    reg = removalx.get_registry()
    metric = reg.make("metric", "road", {"percentages": [0.5, 0.2], "neighbourhood": "6"})
    assert metric.config.percentages == (0.2, 0.5) and metric.higher_is_better is False
    with pytest.raises(Exception, match="percentage"):
        reg.make("metric", "road", {"percentages": [1.5]})
    with pytest.raises(ConfigError, match="neighbourhood"):
        neighbour_weights("8")  # type: ignore[arg-type]
