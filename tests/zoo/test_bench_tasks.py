"""Benchmark-task generators: determinism, ground-truth shapes, balance and task structure."""

from __future__ import annotations

import pytest
import torch

from removalx.errors import ConfigError
from removalx.zoo.bench.batch import BenchBatch
from removalx.zoo.bench.interventions import Check, apply, judge
from removalx.zoo.bench.render import CLIP_SIZE, NEUTRAL_FILL
from removalx.zoo.bench.tasks import TASKS, generate, get_task

N = 64


@pytest.fixture(scope="module")
def batches() -> dict[str, BenchBatch]:
    return {name: generate(name, N, 11) for name in TASKS}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_shapes_types_and_balance(name: str, batches: dict[str, BenchBatch]) -> None:
    b = batches[name]
    t, h, w = CLIP_SIZE
    assert b.video.shape == (N, 3, t, h, w) and b.video.dtype == torch.uint8
    assert b.labels.dtype == torch.int64 and b.labels.shape == (N,)
    assert torch.bincount(b.labels, minlength=2).tolist() == [N // 2, N // 2]
    assert set(b.parts) == set(get_task(name).parts)
    for mask in b.parts.values():
        assert mask.shape == (N, t, h, w) and mask.dtype == torch.bool


@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_seed_same_clips_other_seed_other_clips(name: str, batches: dict[str, BenchBatch]) -> None:
    again, other = generate(name, N, 11), generate(name, N, 12)
    b = batches[name]
    assert torch.equal(again.video, b.video) and torch.equal(again.labels, b.labels)
    assert all(torch.equal(again.parts[k], b.parts[k]) for k in b.parts)
    assert not torch.equal(other.video, b.video)


def test_chunked_generation_is_deterministic_and_sized() -> None:
    a, b = generate("motion", 30, 5, chunk=8), generate("motion", 30, 5, chunk=8)
    assert len(a) == 30 and torch.equal(a.video, b.video)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_masks_cover_the_drawn_objects_and_nothing_else(name: str, batches: dict[str, BenchBatch]) -> None:
    """Outside every part the clip is gray background with mild noise; inside, objects stand out."""
    b = batches[name]
    dev = (b.video.float() - NEUTRAL_FILL).abs().mean(1)  # [N, T, H, W]
    union = b.mask(b.parts)
    assert float(dev[~union].mean()) < 8.0
    assert float(dev[union].mean()) > 40.0


def test_temporal_order_single_frames_have_the_same_distribution_in_both_classes() -> None:
    """Colours of A and B read from the pixels: per frame, the joint (A, B) histogram matches across classes."""
    b = generate("temporal_order", 2000, 3)
    t = CLIP_SIZE[0]
    red = b.video[:, 0].float() > b.video[:, 2].float()  # [N, T, H, W]: red palette colour
    colours = []
    for part in ("event_a", "event_b"):
        m = b.parts[part]
        colours.append((red & m).flatten(2).sum(-1) > m.flatten(2).sum(-1) // 2)  # [N, T]
    cell = colours[0].long() * 2 + colours[1].long()  # [N, T] in 0..3
    for frame in range(t):
        hist = [torch.bincount(cell[b.labels == c, frame], minlength=4).float() / 1000 for c in (0, 1)]
        assert float((hist[0] - hist[1]).abs().max()) < 0.07, frame
    # ... while the order of the two colour switches (from the same pixels) gives the label exactly
    first_switch = [(c != c[:, :1]).float().argmax(1) for c in colours]
    assert torch.equal((first_switch[0] > first_switch[1]).long(), b.labels)
    # and one switch time alone is nearly uninformative (best guess 0.5 + 0.5 / 11)
    best = sum(max(int(((first_switch[0] == v) & (b.labels == c)).sum()) for c in (0, 1)) for v in range(t))
    assert best / len(b) < 0.58


def test_motion_twins_are_identical_and_only_one_moves() -> None:
    b = generate("motion", 32, 4)
    for i in range(len(b)):
        moving, static = b.parts["moving"][i], b.parts["static"][i]
        assert torch.equal(static[0], static[-1]) and not torch.equal(moving[0], moving[-1])
        tex_m = b.video[i, :, 0][:, moving[0]].float()
        tex_s = b.video[i, :, 0][:, static[0]].float()
        assert float((tex_m - tex_s).abs().mean()) < 12.0  # same texture up to noise
        cols = moving.any(1).float().argmax(-1)  # leftmost column per frame
        assert int(torch.sign(cols[-1] - cols[0])) == (1 if int(b.labels[i]) == 1 else -1)


def test_distractor_is_larger_higher_contrast_and_uninformative() -> None:
    b = generate("distractor", 400, 8)
    ev, dis = b.parts["evidence"], b.parts["distractor"]
    assert int(dis[0, 0].sum()) > 3 * int(ev[0, 0].sum())
    dev = (b.video.float() - NEUTRAL_FILL).abs().mean(1)
    assert float(dev[dis].mean()) > 2 * float(dev[ev].mean())
    agree = float((b.info["distractor_direction"] == b.labels).float().mean())
    assert 0.4 < agree < 0.6


def test_and_or_composition() -> None:
    shows = {
        name: {p: generate(name, 60, 2).parts[p].flatten(1).any(1) for p in ("part_a", "part_b")}
        for name in ("and", "or", "or_both")
    }
    labels = torch.arange(60) % 2
    a, b = shows["and"]["part_a"], shows["and"]["part_b"]
    assert torch.equal(a & b, labels == 1) and torch.equal(a | b, torch.ones(60, dtype=torch.bool))
    a, b = shows["or"]["part_a"], shows["or"]["part_b"]
    assert torch.equal(a | b, labels == 1)
    assert bool((a & ~b).any() and (b & ~a).any() and (a & b).any())
    a, b = shows["or_both"]["part_a"], shows["or_both"]["part_b"]
    assert torch.equal(a & b, labels == 1) and torch.equal(a | b, labels == 1)


def test_shortcut_twins_share_clips_and_differ_in_the_patch() -> None:
    corr, rand = generate("shortcut", 200, 9), generate("shortcut_random", 200, 9)
    outside = ~corr.parts["patch"].unsqueeze(1).expand_as(corr.video)
    assert torch.equal(corr.video[outside], rand.video[outside])  # the same clips
    white = lambda x: x.video[:, :, 0, :4, :4].float().mean((1, 2, 3)) > 128  # noqa: E731
    assert torch.equal(white(corr).long(), corr.labels)
    assert 0.35 < float((white(rand).long() == rand.labels).float().mean()) < 0.65


def test_interventions_on_a_hand_made_clip() -> None:
    video = torch.arange(2 * 3 * 1 * 1 * 2, dtype=torch.uint8).view(2, 3, 1, 1, 2)
    mask = torch.tensor([[[[True, False]]], [[[False, False]]]])
    removed = apply(video, mask, "remove", 7)
    kept = apply(video, mask, "keep", 7)
    assert removed[0, :, 0, 0].tolist() == [[7, 1], [7, 3], [7, 5]]
    assert torch.equal(removed[1], video[1])
    assert kept[0, :, 0, 0].tolist() == [[0, 7], [2, 7], [4, 7]]
    assert bool((kept[1] == 7).all())
    assert judge("chance", 0.59, 1.0, 2) and not judge("chance", 0.61, 1.0, 2)
    assert judge("keep90", 0.9, 1.0, 2) and not judge("keep90", 0.89, 1.0, 2)
    assert judge("within5", 0.94, 0.98, 2) and not judge("within5", 0.92, 0.98, 2)
    assert judge(None, 0.0, 1.0, 2) is None
    assert Check("remove", ("a", "b"), "chance").name == "remove:a+b"


def test_bad_names_and_sizes_are_refused(batches: dict[str, BenchBatch]) -> None:
    with pytest.raises(ConfigError, match="unknown benchmark task"):
        get_task("no_such_task")
    with pytest.raises(ConfigError, match=">= 1"):
        generate("motion", 0, 1)
    with pytest.raises(ConfigError, match="no part"):
        batches["motion"].mask(["evidence"])
