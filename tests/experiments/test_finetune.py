"""``removalx finetune``: folds, schedule, head swap, the weights file, resume, the CLI round trip."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from torch import nn

from removalx.errors import ConfigError, DatasetError, ModelError
from removalx.experiments import finetune_loop as loop
from removalx.experiments.finetune import FinetuneConfig, finetune
from removalx.files.torchfile import load_plain
from removalx.models.finetuned import META_KEY, weights_payload
from removalx.models.heads import find_head, swap_head
from removalx.models.loading import load_model

TINY_MODEL = """
import torch
from torch import nn


def make():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
            nn.Linear(4, 10),
        )


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = make()[:4]
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.body(x))


def make_net():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return Net()
"""

N_CLIPS = 8
FAST = {"folds": 2, "epochs": 1, "frames": 4, "size": 16, "batch_size": 4}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A folder of 8 generated GIF clips (synthetic ring moving left/right) with labels.csv."""
    from removalx.video.io import write_gif
    from removalx.zoo.data import make_clip

    folder = tmp_path_factory.mktemp("clips")
    rows = ["file,label"]
    for i in range(N_CLIPS):
        label = i % 2
        clip = make_clip(label, seed=50 + i, frames=4, size=16)
        write_gif((clip.video * 255).round().to(torch.uint8), folder / f"c{i}.gif", fps=4)
        rows.append(f"c{i}.gif,{label}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny_finetune_models.py"
    path.write_text(TINY_MODEL)
    return f"python:{path}:make_net"


# -- folds and schedule -----------------------------------------------------------------------------
def test_unstratified_folds_are_the_kfold_blocks():
    a = loop.fold_assignment([0] * 11, 3, seed=1, stratified=False)
    assert sorted(Counter(a.tolist()).values()) == [3, 4, 4]  # first n mod k folds one larger
    assert torch.equal(a, loop.fold_assignment([0] * 11, 3, seed=1, stratified=False))
    assert not torch.equal(a, loop.fold_assignment([0] * 11, 3, seed=2, stratified=False))


def test_stratified_folds_balance_every_class():
    labels = [0] * 7 + [1] * 5 + [2] * 3
    a = loop.fold_assignment(labels, 3, seed=0, stratified=True)
    for cls in (0, 1, 2):
        counts = Counter(a[torch.tensor(labels) == cls].tolist())
        assert max(counts.values()) - min(counts.get(f, 0) for f in range(3)) <= 1
    sizes = Counter(a.tolist()).values()
    assert max(sizes) - min(sizes) <= 1


def test_more_folds_than_clips_is_refused():
    with pytest.raises(ConfigError, match="3 folds need at least 3"):
        loop.fold_assignment([0, 1], 3, seed=0, stratified=False)


def test_step_schedule_matches_hand_values():
    lrs = [loop.epoch_lr(1.0, e, [5, 10], 0.1) for e in range(12)]
    assert lrs[:5] == [1.0] * 5
    assert lrs[5:10] == pytest.approx([0.1] * 5)
    assert lrs[10:] == pytest.approx([0.01] * 2)


def test_config_defaults_are_the_paper_and_released_code():
    cfg = FinetuneConfig()
    assert (cfg.epochs, cfg.folds) == (10, 5)  # paper Sec. 4.3
    assert cfg.lr == pytest.approx(0.005 / 8 / 8) and cfg.momentum == 0.9 and cfg.nesterov
    assert (cfg.weight_decay, cfg.batch_size, cfg.grad_clip, cfg.lr_steps) == (1e-4, 10, 40.0, [5, 10])
    with pytest.raises(ValueError):
        FinetuneConfig(epochs=0)
    with pytest.raises(ValueError):
        FinetuneConfig(lr_steps=[0])


# -- heads ----------------------------------------------------------------------------------------
def test_swap_head_finds_fc_head_and_sequential_and_1x1_conv():
    from torchvision.models import video

    r3d = video.r3d_18(weights=None, num_classes=400)
    assert swap_head(r3d, 3) == "fc" and r3d.fc.out_features == 3
    s3d = video.s3d(weights=None, num_classes=400)
    assert swap_head(s3d, 5) == "classifier.1"
    assert isinstance(s3d.classifier[1], nn.Conv3d) and s3d.classifier[1].out_channels == 5
    seq = nn.Module()
    seq.head = nn.Sequential(nn.Dropout(), nn.Linear(8, 400))
    assert swap_head(seq, 2) == "head.1"


def test_swap_head_draws_from_the_generator_only():
    a, b = nn.Module(), nn.Module()
    a.fc, b.fc = nn.Linear(6, 4), nn.Linear(6, 4)
    swap_head(a, 3, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(123)  # the global state must not matter
    swap_head(b, 3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.fc.weight, b.fc.weight) and not a.fc.bias.any()


def test_a_module_without_a_head_gets_a_clear_error():
    model = nn.Sequential(nn.Conv3d(3, 4, 3), nn.Flatten())
    with pytest.raises(ModelError, match="fc, head or classifier") as exc:
        find_head(model)
    assert "--head" in exc.value.fix


# -- the weights file and the model adapters ------------------------------------------------------
def test_torchvision_adapter_loads_a_finetuned_file(tmp_path):
    from torchvision.models import video

    module = video.r3d_18(weights=None, num_classes=3)
    meta = {"head": "fc", "num_classes": 3, "class_names": ["a", "b", "c"], "spec": "torchvision:r3d_18"}
    path = tmp_path / "ft.pt"
    torch.save(weights_payload(module.state_dict(), meta), path)
    model = load_model("torchvision:r3d_18", weights=str(path), device="cpu")
    assert model.module.fc.out_features == 3 and model.class_names == ["a", "b", "c"]
    assert torch.equal(model.module.fc.weight, module.fc.weight)
    bad = tmp_path / "bad.pt"
    torch.save(weights_payload(module.state_dict(), {**meta, "num_classes": 0}), bad)
    with pytest.raises(ModelError, match="num_classes"):
        load_model("torchvision:r3d_18", weights=str(bad), device="cpu")


# -- the protocol -----------------------------------------------------------------------------------
def _run(spec, clips, out, **over):
    cfg = FinetuneConfig(**{**FAST, **over})
    return finetune(spec, str(clips), out, device="cpu", config=cfg, progress=False)


def test_best_fold_weights_score_the_reported_accuracy(spec, clips, tmp_path):
    """An independent check: the written best-fold model, scored again on its held-out fold."""
    summary = _run(spec, clips, tmp_path / "out", final="best_fold")
    assert len(summary["fold_accuracy"]) == 2 and all(0 <= a <= 1 for a in summary["fold_accuracy"])
    assert summary["mean_accuracy"] == pytest.approx(sum(summary["fold_accuracy"]) / 2)
    obj = load_plain(tmp_path / "out" / "model.pt", ModelError, "weights", "")
    meta = obj[META_KEY]
    assert (meta["num_classes"], meta["head"], meta["fold"]) == (2, "fc", summary["best_fold"])
    model = load_model(spec, weights=str(tmp_path / "out" / "model.pt"), device="cpu")
    assert model.module.fc.out_features == 2
    fold = summary["best_fold"]
    held_out = loop.fold_assignment([i % 2 for i in range(N_CLIPS)], 2, seed=0, stratified=False) == fold
    from removalx.data.datasets import dataset_refs, load_item

    _, refs = dataset_refs(str(clips), frames=4, size=16)
    x = torch.stack([load_item(r).video for r in refs])[held_out]
    with torch.inference_mode():
        pred = model(x).argmax(1)
    y = torch.tensor([r.label for r in refs])[held_out]
    assert float((pred == y).float().mean()) == pytest.approx(summary["fold_accuracy"][fold])
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


def test_same_seed_same_weights_and_another_seed_differs(spec, clips, tmp_path):
    a = _run(spec, clips, tmp_path / "a")
    b = _run(spec, clips, tmp_path / "b")
    _run(spec, clips, tmp_path / "c", seed=1)
    assert a["fold_accuracy"] == b["fold_accuracy"]
    wa, wb, wc = (
        load_plain(tmp_path / n / "model.pt", ModelError, "w", "")["state_dict"] for n in ("a", "b", "c")
    )
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_an_interrupted_run_resumes_to_the_same_result(spec, clips, tmp_path, monkeypatch):
    reference = _run(spec, clips, tmp_path / "ref", epochs=2)
    real, calls = loop.train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(spec, clips, tmp_path / "out", epochs=2)
    assert (tmp_path / "out" / "checkpoint.pt").is_file()
    calls.clear()
    monkeypatch.setattr(loop, "train_epoch", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    resumed = _run(spec, clips, tmp_path / "out", epochs=2)
    assert len(calls) == 2 * 2 + 2 - 1  # folds x epochs + final fit, minus the finished epoch
    assert resumed["fold_accuracy"] == reference["fold_accuracy"]
    w_ref = load_plain(tmp_path / "ref" / "model.pt", ModelError, "w", "")["state_dict"]
    w_res = load_plain(tmp_path / "out" / "model.pt", ModelError, "w", "")["state_dict"]
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)
    calls.clear()
    assert _run(spec, clips, tmp_path / "out", epochs=2) == resumed and not calls  # all done: no work


def test_resume_with_other_settings_names_the_difference(spec, clips, tmp_path):
    _run(spec, clips, tmp_path / "out")
    with pytest.raises(ConfigError, match="epochs: 1 before, 2 now"):
        _run(spec, clips, tmp_path / "out", epochs=2)


def test_unlabelled_clips_are_refused(spec, clips, tmp_path):
    import shutil

    folder = tmp_path / "nolabels"
    shutil.copytree(clips, folder)
    (folder / "labels.csv").write_text("file,label\nc0.gif,0\n")
    with pytest.raises(DatasetError, match="have no label"):
        _run(spec, folder, tmp_path / "out")


def test_cli_finetune_then_explain_with_the_weights(spec, clips, tmp_path, capsys):
    from removalx.cli.main import main

    out = tmp_path / "ft"
    argv = ["finetune", "--model", spec, "--dataset", str(clips), "--out", str(out), "--quiet"]
    argv += ["--folds", "2", "--epochs", "1", "--frames", "4", "--size", "16", "--batch-size", "4"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["weights"] == str(out / "model.pt")
    assert main([*argv[:-2], "--folds", "2", "--epochs", "0"]) == 3  # bounded option: an input error
    explained = tmp_path / "exp"
    argv = ["explain", str(clips / "c0.gif"), "--model", spec, "--weights", summary["weights"]]
    argv += ["--recipe", "gradient", "--frames", "4", "--size", "16", "--out", str(explained), "--quiet"]
    assert main(argv) == 0
    info = json.loads((explained / "summary.json").read_text())
    assert info["target_name"] in ("class_0", "class_1")


def test_hf_model_is_finetuned_and_saved_as_a_folder(clips, tmp_path):
    tf = pytest.importorskip("transformers")
    cfg = tf.VideoMAEConfig(
        image_size=32,
        patch_size=16,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=5,
    )
    torch.manual_seed(0)
    source = tmp_path / "videomae"
    tf.VideoMAEForVideoClassification(cfg).save_pretrained(source)
    crop = {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}}
    tf.VideoMAEImageProcessor(**crop).save_pretrained(source)
    summary = _run(f"hf:{source}", clips, tmp_path / "out")
    assert len(summary["fold_accuracy"]) == 2
    model = load_model(f"hf:{tmp_path / 'out' / 'hf-model'}", device="cpu")
    assert model.class_names == ["class_0", "class_1"] and model.input_size[-1] == 32
    with torch.inference_mode():
        assert model(torch.rand(1, 4, 16, 16, 3)).shape == (1, 2)
