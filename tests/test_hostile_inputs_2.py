"""Hostile input, part 2 (issue 27 §3.2, §3.3, §3.9, §3.10, §3.11, §3.12, §2.7).

Attribution files that inflate past a size bound or hold types torch cannot take, ``hf:``
configs that would build huge models, dataset entries that leave ``--video-root``, malformed
annotation files, oversized decoded clips, and dataset labels that are not the model's classes.
Nothing here allocates more than a few MiB: sizes are declared, not written, or the bounds are
lowered through parameters.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from removalx.core.types import Attribution
from removalx.errors import StorageError
from removalx.files.attribution_file import MAX_BYTES_ENV, MAX_TOTAL_BYTES, load_attribution


# -- attribution files (§3.2, §3.10) ---------------------------------------------------------------
def _text(obj: object) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)


def _arrays(**changes: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {
        "format": _text({"name": "removalx.attribution", "version": 1}),
        "values": np.zeros((2, 3, 4), np.float32),
        "target": _text(1),
        "meta": _text({}),
    }
    arrays.update(changes)
    return arrays


def _npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool = False) -> Path:
    with open(path, "wb") as fh:
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)  # type: ignore[operator, arg-type]
    return path


def _with_member(path: Path, name: str, raw: bytes) -> Path:
    """A valid file whose member ``name`` is replaced by the bytes ``raw``."""
    _npz(path, {k: v for k, v in _arrays().items() if k != name[:-4]})
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(name, raw)
    return path


def _declare_size(path: Path, member: str, size: int) -> None:
    """Patch the central directory so that ``member`` claims ``size`` uncompressed bytes.

    Python's zip reader takes the size from the central directory (offset 24 of the entry).
    """
    data = bytearray(path.read_bytes())
    entry = data.find(b"PK\x01\x02")
    while entry != -1:
        name_len = struct.unpack_from("<H", data, entry + 28)[0]
        if bytes(data[entry + 46 : entry + 46 + name_len]) == member.encode():
            struct.pack_into("<I", data, entry + 24, size)
            path.write_bytes(bytes(data))
            return
        entry = data.find(b"PK\x01\x02", entry + 4)
    raise AssertionError(f"no central directory entry for {member}")


def test_zip_bomb_of_deflated_zeros_is_refused_before_inflating(tmp_path: Path) -> None:
    # 4 MiB of zeros deflate to a few KiB: a small-scale copy of the 5 MB file that inflates to 5 GiB.
    path = _npz(tmp_path / "bomb.npz", _arrays(values=np.zeros((16, 128, 512), np.float32)), True)
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(StorageError) as err:
        load_attribution(path, max_bytes=2**20)
    msg = str(err.value)
    assert f"more than the limit of {2**20} bytes" in msg and "max_bytes" in msg and MAX_BYTES_ENV in msg
    # Oracle: the same file is a valid attribution, and loads under a bound it fits in.
    rec = load_attribution(path, max_bytes=5 * 2**20)
    assert tuple(rec.values.shape) == (16, 128, 512) and not rec.values.any()


def test_declared_size_past_the_default_bound_is_refused(tmp_path: Path) -> None:
    """A member whose header and zip entry both claim 3 GiB passes the header check, not the bound."""
    shape = (16, 4096, 12288)  # float32: exactly 3 GiB
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    path = _with_member(tmp_path / "a.npz", "values.npy", header.getvalue() + bytes(64))
    _declare_size(path, "values.npy", 3 * 2**30)
    assert zipfile.ZipFile(path).getinfo("values.npy").file_size == 3 * 2**30
    assert MAX_TOTAL_BYTES == 2 * 2**30
    with pytest.raises(StorageError, match=r"limit of 2147483648 bytes \(2\.00 GiB\)") as err:
        Attribution.load(path)
    assert "zip bomb" in str(err.value) and len(str(err.value)) < 1200


def test_environment_variable_sets_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _npz(tmp_path / "a.npz", _arrays(values=np.zeros((4, 64, 64), np.float32)), True)  # 64 KiB
    monkeypatch.setenv(MAX_BYTES_ENV, str(32 * 1024))
    with pytest.raises(StorageError, match="more than the limit of 32768 bytes"):
        Attribution.load(path)
    monkeypatch.setenv(MAX_BYTES_ENV, str(2**20))
    assert Attribution.load(path).values.shape == (4, 64, 64)
    monkeypatch.setenv(MAX_BYTES_ENV, "lots")
    with pytest.raises(StorageError, match=f"{MAX_BYTES_ENV} must be a positive whole number"):
        Attribution.load(path)
    with pytest.raises(StorageError, match="max_bytes must be a positive"):
        load_attribution(path, max_bytes=0)


def test_big_endian_arrays_load_as_their_values(tmp_path: Path) -> None:
    g = np.random.default_rng(0)
    values = g.standard_normal((2, 3, 4))
    fv = g.standard_normal(4)
    labels = np.arange(24).reshape(2, 3, 4) % 4
    arrays = _arrays(
        values=values.astype(">f8"), feature_values=fv.astype(">f4"), labels=labels.astype(">i8")
    )
    rec = load_attribution(_npz(tmp_path / "be.npz", arrays))
    # Oracle: the little-endian numbers NumPy itself decodes.
    np.testing.assert_array_equal(rec.values.numpy(), values)
    np.testing.assert_array_equal(rec.feature_values.numpy(), fv.astype(np.float32))  # type: ignore[union-attr]
    np.testing.assert_array_equal(rec.labels.numpy(), labels)  # type: ignore[union-attr]


def _npy_header(text: str, version: int = 1) -> bytes:
    raw = text.encode("latin1")
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(raw)) + raw


def _v3_huge() -> bytes:
    """A version-3.0 header (UTF-8, as NumPy writes for non-Latin-1 names) claiming a terabyte."""
    body = "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576, 256), }"
    pad = 64 - (12 + len(body) + 1) % 64
    return _npy_header(body + " " * pad + "\n", 3) + bytes(16)


BAD_MEMBERS = [
    (
        "float128",
        _arrays(values=np.zeros((2, 3, 4), np.longdouble)),
        "dtype float128, which torch cannot hold",
    ),
    ("empty-map", _arrays(values=np.zeros((0, 4, 4), np.float32)), "empty map of shape [0, 4, 4]"),
]
BAD_HEADERS = [
    ("unterminated", _npy_header("{'descr': \n"), "malformed .npy header (TokenError"),
    ("not-a-dict", _npy_header("[1, 2]\n"), "malformed .npy header (ValueError: Header is not a dictionary"),
    ("bad-version", b"\x93NUMPY\x09\x00" + bytes(40), "unsupported .npy format version (9, 0)"),
    ("short", b"\x93NU", "malformed .npy header"),
    ("v3-huge", _v3_huge(), "declares shape (1048576, 1048576, 256)"),
]


@pytest.mark.parametrize(("arrays", "needle"), [c[1:] for c in BAD_MEMBERS], ids=[c[0] for c in BAD_MEMBERS])
def test_untypable_or_empty_values_are_a_storage_error(tmp_path: Path, arrays, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError) as err:
        Attribution.load(_npz(tmp_path / "a.npz", arrays))
    assert needle in str(err.value) and "Fix:" in str(err.value)


@pytest.mark.parametrize(("raw", "needle"), [c[1:] for c in BAD_HEADERS], ids=[c[0] for c in BAD_HEADERS])
def test_malformed_npy_header_is_a_storage_error(tmp_path: Path, raw: bytes, needle: str) -> None:
    path = _with_member(tmp_path / "a.npz", "values.npy", raw)
    with pytest.raises(StorageError) as err:
        Attribution.load(path)
    msg = str(err.value)
    assert needle in msg and "Fix:" in msg and len(msg) < 1200, msg


def test_valid_v3_header_still_loads(tmp_path: Path) -> None:
    """The oracle of ``v3-huge``: a version-3.0 member of the right size is read, not refused."""
    body = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }"
    pad = 64 - (12 + len(body) + 1) % 64
    raw = _npy_header(body + " " * pad + "\n", 3) + np.arange(4, dtype="<f4").tobytes()
    rec = load_attribution(_with_member(tmp_path / "a.npz", "values.npy", raw))
    assert rec.values.tolist() == [[[0.0, 1.0], [2.0, 3.0]]]
    assert torch.is_tensor(rec.values)


# -- hf: configs and processors (§3.3, §3.12) ------------------------------------------------------
HF_SMALL = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 37}


@pytest.fixture(scope="module")
def tf():  # type: ignore[no-untyped-def]
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    return pytest.importorskip("transformers")


def _videomae_config(tf, **changes):  # type: ignore[no-untyped-def]
    base = {"image_size": 32, "patch_size": 16, "num_frames": 4, "tubelet_size": 2, **HF_SMALL}
    cfg = tf.VideoMAEConfig(**{**base, **changes})
    cfg.num_labels = 3
    return cfg


def test_config_sizes_match_what_transformers_builds(tf) -> None:  # type: ignore[no-untyped-def]
    """Oracle: the token count each family's embedding computes, and its real parameter count."""
    from removalx.models.hf import _config_sizes

    cases = [
        (
            _videomae_config(tf),
            tf.VideoMAEForVideoClassification,
            lambda m: m.videomae.embeddings.num_patches,
        ),
        (
            tf.TimesformerConfig(image_size=48, patch_size=16, num_frames=4, num_labels=3, **HF_SMALL),
            tf.TimesformerForVideoClassification,
            lambda m: m.timesformer.embeddings.patch_embeddings.num_patches * 4,
        ),
        (
            tf.VivitConfig(image_size=32, num_frames=4, tubelet_size=[2, 16, 16], num_labels=3, **HF_SMALL),
            tf.VivitForVideoClassification,
            lambda m: m.vivit.embeddings.patch_embeddings.num_patches,
        ),
    ]
    for cfg, cls, tokens_of in cases:
        model = cls(cfg)
        tokens, params = _config_sizes(cfg, "config")
        real = sum(p.numel() for p in model.parameters())
        assert tokens == tokens_of(model)
        assert 0.8 * real <= params <= real  # a lower estimate, never refusing a model smaller than it


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        (
            {"num_frames": 100000, "image_size": 4096},
            "num_frames=100000; removalx accepts a whole number from 1 to 512",
        ),
        ({"image_size": 4096}, "image_size=4096; removalx accepts a whole number from 1 to 1024"),
        ({"num_frames": 512, "image_size": 512, "patch_size": 8}, "tokens=1048576"),
        ({"hidden_size": 8192, "intermediate_size": 65536, "num_hidden_layers": 64}, "parameters="),
        ({"num_frames": 0}, "num_frames=0"),
        ({"num_frames": 4.5}, "num_frames"),  # transformers refuses it itself
        ({"patch_size": [16, 16, 16, 16]}, "expected a whole number or a list of 2 or 3"),
    ],
)
def test_hostile_hf_config_is_refused_before_building(tf, tmp_path: Path, changes, needle: str) -> None:  # type: ignore[no-untyped-def]
    from removalx.errors import ModelError
    from removalx.models import load_model

    _videomae_config(tf).save_pretrained(tmp_path)  # config.json only: no weights, nothing to download
    cfg_path = tmp_path / "config.json"
    data = json.loads(cfg_path.read_text())
    data.update(changes)
    cfg_path.write_text(json.dumps(data))
    assert cfg_path.stat().st_size < 2048
    with pytest.raises(ModelError) as err:
        load_model(f"hf:{tmp_path}", device="cpu")
    msg = str(err.value)
    assert needle in msg and "Fix:" in msg and len(msg) < 1000, msg


def test_config_at_the_bounds_passes_the_check(tf) -> None:  # type: ignore[no-untyped-def]
    """The other side of each bound: exactly the bound is accepted (no model is built here)."""
    from removalx.errors import ModelError
    from removalx.models.hf import CONFIG_BOUNDS, check_config

    check_config(_videomae_config(tf, num_frames=2, image_size=1024, patch_size=4))  # 65536 tokens
    check_config(_videomae_config(tf, num_frames=512, tubelet_size=2))
    for field in ("num_frames", "image_size", "hidden_size", "num_labels"):
        with pytest.raises(ModelError, match=f"{field}="):
            cfg = _videomae_config(tf)
            setattr(cfg, field, CONFIG_BOUNDS[field] + 1)
            check_config(cfg)


@pytest.mark.parametrize("crop", [(0, 0), (0, 32), (-32, 32), (100000, 100000)])
def test_hf_processor_with_a_degenerate_or_huge_crop_is_refused(tf, tmp_path: Path, crop) -> None:  # type: ignore[no-untyped-def]
    from removalx.errors import ModelError
    from removalx.models import load_model

    torch.manual_seed(0)
    tf.VideoMAEForVideoClassification(_videomae_config(tf)).save_pretrained(tmp_path)
    proc = tf.VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc.save_pretrained(tmp_path)
    assert load_model(f"hf:{tmp_path}", device="cpu").input_size == (4, 32, 32)  # the oracle: valid crop
    pp = tmp_path / "preprocessor_config.json"
    data = json.loads(pp.read_text())
    data["crop_size"] = {"height": crop[0], "width": crop[1]}
    pp.write_text(json.dumps(data))
    bad = crop[0] if not 1 <= crop[0] <= 1024 else crop[1]
    with pytest.raises(ModelError, match=rf"image processor's crop_size declares (height|width)={bad}"):
        load_model(f"hf:{tmp_path}", device="cpu")


# -- dataset entries and annotation files (§3.9) ---------------------------------------------------
def _gif(path: Path, seed: int = 0) -> Path:
    from removalx.testing import tiny_video
    from removalx.video.io import write_gif

    path.parent.mkdir(parents=True, exist_ok=True)
    write_gif((tiny_video(frames=4, size=16, seed=seed) * 255).round().to(torch.uint8), path, fps=4)
    return path


KINETICS_HEADER = "label,youtube_id,time_start,time_end,split\n"


@pytest.fixture
def outside(tmp_path: Path) -> dict[str, Path]:
    """A video root ``data/videos`` with one clip, and a "secret" clip beside it, outside the root."""
    root = tmp_path / "data" / "videos"
    _gif(root / "aaaaaaaaaaa.gif")
    (root / "Run").mkdir()
    secret = _gif(tmp_path / "data" / "outside" / "secret.gif", 1)
    return {"root": root, "secret": secret, "tmp": tmp_path}


def _kinetics(tmp: Path, *rows: str) -> str:
    ann = tmp / "ann.csv"
    ann.write_text(KINETICS_HEADER + "".join(r + "\n" for r in rows))
    return f"kinetics:{ann}"


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("zumba,../outside/secret,0,10,val", "youtube_id '../outside/secret' names a path outside"),
        ("zumba,{secret_stem},0,10,val", "names a path outside the video root"),  # an absolute path
        ("../outside,secret,0,10,val", "the class folder of label '../outside' names a path outside"),
    ],
)
def test_kinetics_entry_outside_the_root_is_refused(outside, row: str, needle: str) -> None:
    from removalx.data.datasets import dataset_refs
    from removalx.errors import DatasetError

    row = row.format(secret_stem=outside["secret"].with_suffix(""))
    spec = _kinetics(outside["tmp"], "abseiling,aaaaaaaaaaa,0,10,val", row)
    with pytest.raises(DatasetError, match="line 3: ") as err:
        dataset_refs(spec, video_root=outside["root"])
    assert needle in str(err.value) and "--video-root" in str(err.value)
    # Oracle: the secret file is there to be read; without the hostile row the data set is fine.
    assert outside["secret"].is_file()
    _, refs = dataset_refs(
        _kinetics(outside["tmp"], "abseiling,aaaaaaaaaaa,0,10,val"), video_root=outside["root"]
    )
    assert [Path(r.source["path"]).name for r in refs] == ["aaaaaaaaaaa.gif"]


def test_ucf_entry_outside_the_root_is_refused(outside) -> None:
    from removalx.data.datasets import dataset_refs
    from removalx.errors import DatasetError

    splits = outside["tmp"] / "splits"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 Run\n")
    hostile = "Run/../../outside/secret.gif"
    assert (outside["root"] / hostile).is_file()  # the path does reach the secret
    (splits / "testlist01.txt").write_text(hostile + "\n")
    with pytest.raises(DatasetError, match=r"testlist01\.txt, line 1: the entry 'Run/\.\./\.\./outside"):
        dataset_refs(f"ucf101:{splits / 'testlist01.txt'}", video_root=outside["root"])


def test_symlink_inside_the_root_is_followed(outside) -> None:
    """Containment is lexical: a root may be a folder of links to clips stored elsewhere."""
    from removalx.data.datasets import dataset_refs

    (outside["root"] / "linked.gif").symlink_to(outside["secret"])
    _, refs = dataset_refs(_kinetics(outside["tmp"], "zumba,linked,0,10,val"), video_root=outside["root"])
    assert len(refs) == 1 and refs[0].source["label_name"] == "zumba"


def _ucf(tmp: Path, class_ind: str, split: str) -> str:
    folder = tmp / "ucf"
    folder.mkdir(exist_ok=True)
    (folder / "classInd.txt").write_text(class_ind)
    (folder / "list.txt").write_text(split)
    _gif(folder / "Run" / "v_Run_g01_c01.gif")
    return f"ucf101:{folder / 'list.txt'}"


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda t: _kinetics(t, "zumba,abc,inf,10,val"), r"ann\.csv, line 2: expected label,youtube_id"),
        (lambda t: _kinetics(t, "zumba,abc,0,1e400,val"), r"ann\.csv, line 2: expected label,youtube_id"),
        (lambda t: _kinetics(t), r"ann\.csv lists no clips \(it holds no row after the header\)"),
        (lambda t: _ucf(t, "1 Run\n", ""), r"list\.txt lists no clips"),
        (lambda t: _ucf(t, "", "Run/v_Run_g01_c01.avi\n"), r"classInd\.txt lists no clips"),
        (
            lambda t: _ucf(t, f"{10**23} Run\n", "Run/v_Run_g01_c01.avi\n"),
            r"the indices must be 1\.\.1 \(one per class\), got 100000000000000000000000 on line 1",
        ),
        (
            lambda t: _ucf(t, "1 Run\n2 Run\n", "Run/v_Run_g01_c01.avi\n"),
            "line 2: class 'Run' is listed twice",
        ),
        (
            lambda t: _ucf(t, "1 Run\n1 Jump\n", "Run/v_Run_g01_c01.avi\n"),
            "line 2: index 1 is also on line 1",
        ),
        (
            lambda t: _ucf(t, "1 Run\n", "Run/v_Run_g01_c01.avi abc\n"),
            r"line 1: the class index 'abc' of a train-list line must be the 1-based index of 'Run'",
        ),
        (lambda t: _ucf(t, "1 Run\n2 Jump\n", "Run/v_Run_g01_c01.avi 2\n"), "in classInd.txt, 1"),
    ],
)
def test_malformed_annotation_file_is_a_dataset_error(tmp_path: Path, make, needle: str) -> None:  # type: ignore[no-untyped-def]
    from removalx.data.datasets import dataset_refs
    from removalx.errors import DatasetError

    spec = make(tmp_path)
    with pytest.raises(DatasetError, match=needle) as err:
        dataset_refs(spec, video_root=tmp_path / "ucf")
    assert "Fix:" in str(err.value) and len(str(err.value)) < 1000


def test_valid_train_list_and_classes_file(tmp_path: Path) -> None:
    """The oracles of the table above: the same files, well formed, load."""
    from removalx.data.datasets import dataset_refs
    from removalx.errors import DatasetError

    _, refs = dataset_refs(
        _ucf(tmp_path, "1 Jump\n2 Run\n", "Run/v_Run_g01_c01.avi 2\n"), video_root=tmp_path / "ucf"
    )
    assert [(r.label, r.source["label_name"]) for r in refs] == [(1, "Run")]
    _gif(tmp_path / "k" / "abc.gif")
    classes = tmp_path / "classes.txt"
    classes.write_text("zumba\nabseiling\n")
    spec = _kinetics(tmp_path, "abseiling,abc,0,10,val")
    _, refs = dataset_refs(spec, video_root=tmp_path / "k", classes=classes)
    assert [(r.label, r.source["label_name"]) for r in refs] == [(1, "abseiling")]
    classes.write_text("zumba\nabseiling\nzumba\n")
    with pytest.raises(DatasetError, match=r"class 'zumba' is listed twice \(the second time as class 3\)"):
        dataset_refs(spec, video_root=tmp_path / "k", classes=classes)


def test_missing_boxes_folder_is_a_dataset_error(tmp_path: Path) -> None:
    from removalx.data.datasets import dataset_refs
    from removalx.errors import DatasetError

    spec = _ucf(tmp_path, "1 Run\n", "Run/v_Run_g01_c01.avi\n")
    with pytest.raises(DatasetError, match=r"--boxes .*nope' is not a folder \(it does not exist\)"):
        dataset_refs(spec, video_root=tmp_path / "ucf", boxes=tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match=r"is not a folder \(it is a file\)"):
        dataset_refs(spec, video_root=tmp_path / "ucf", boxes=tmp_path / "file")
    (tmp_path / "boxes").mkdir()
    _, refs = dataset_refs(spec, video_root=tmp_path / "ucf", boxes=tmp_path / "boxes")  # the oracle
    assert refs[0].source["boxes"].endswith("boxes/Run/v_Run_g01_c01")


# -- dataset labels against the model's classes (§2.7) ---------------------------------------------
def _refs(mapping: dict[str, int]):  # type: ignore[no-untyped-def]
    from removalx.data.datasets import ItemRef

    return [ItemRef("d", f"c{i}", i, {"kind": "file", "label_name": n}) for n, i in mapping.items()]


ZOO_NAMES = ["moves_left", "moves_right", "moves_up", "moves_down"]


def test_label_names_matching_the_model_pass_and_print_the_mapping(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from removalx.experiments.selection import check_label_names

    refs = _refs({"moves left": 0, "Moves-Up": 2})  # case, spaces and hyphens do not matter
    assert check_label_names(refs, ZOO_NAMES, model="zoo:r3d_tiny", progress=True) == {
        0: "moves left",
        2: "Moves-Up",
    }
    err = capsys.readouterr().err
    assert "'moves left' -> 0 ('moves_left'), 'Moves-Up' -> 2 ('moves_up')" in err
    assert check_label_names(_refs({"x": 0}), None) == {0: "x"}  # a model without names: nothing to check
    assert check_label_names(_refs({"x": 0}), ["LABEL_0", "LABEL_1"]) == {0: "x"}  # generic names


def test_label_names_at_other_indices_are_an_error() -> None:
    from removalx.errors import DatasetError
    from removalx.experiments.selection import check_label_names

    # Sorted Kinetics-style names: moves_left 0, moves_up 1 -- but moves_up is the model's class 2.
    with pytest.raises(
        DatasetError, match="'moves_up' is class 1 of the data set but class 2 of the model"
    ) as err:
        check_label_names(_refs({"moves_left": 0, "moves_up": 1}), ZOO_NAMES, model="zoo:r3d_tiny")
    assert "--classes" in str(err.value)
    with pytest.raises(DatasetError, match=r"class index 7 .* has 4 classes"):
        check_label_names(_refs({"a": 7}), ZOO_NAMES)


def test_label_names_the_model_lacks_warn_through_evaluate(tmp_path: Path) -> None:
    """End to end: Kinetics 'forest'/'walking' against the zoo model's moves_* classes warns."""
    from removalx.experiments import evaluate

    pytest.importorskip("pandas")
    _gif(tmp_path / "k" / "aaa.gif", 0)
    _gif(tmp_path / "k" / "bbb.gif", 1)
    spec = _kinetics(tmp_path, "forest,aaa,0,10,val", "walking,bbb,0,10,val")
    opts = {"frames": 4, "size": 16, "metric_set": ["deletion.steps=2"], "progress": False}
    over = ["segmentation.divisions=[1,2,2]"]
    with pytest.warns(UserWarning, match="2 of the data set's 2 classes are not classes of zoo:r3d_tiny"):
        evaluate(
            "occlusion3d",
            tmp_path / "a.db",
            dataset=spec,
            video_root=str(tmp_path / "k"),
            model="zoo:r3d_tiny",
            metrics="deletion",
            overrides=over,
            **opts,
        )
    moved = _kinetics(tmp_path, "moves_left,aaa,0,10,val", "moves_up,bbb,0,10,val")
    from removalx.errors import DatasetError

    with pytest.raises(DatasetError, match="class 1 of the data set but class 2"):
        evaluate(
            "occlusion3d",
            tmp_path / "b.db",
            dataset=moved,
            video_root=str(tmp_path / "k"),
            model="zoo:r3d_tiny",
            metrics="deletion",
            overrides=over,
            **opts,
        )


# -- decoded clip size (§3.11) ---------------------------------------------------------------------
def _big_frames(frames: int = 3, h: int = 200, w: int = 300) -> torch.Tensor:
    """Flat frames compress to a few KiB whatever their size (the test files stay small)."""
    return torch.full((frames, h, w, 3), 90, dtype=torch.uint8)


@pytest.mark.parametrize("kind", ["gif", "mp4", "folder"])
def test_clip_above_the_pixel_budget_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from removalx.errors import VideoError
    from removalx.video import io as vio

    if kind == "gif":
        path = vio.write_gif(_big_frames(), tmp_path / "big.gif")
    elif kind == "mp4":
        pytest.importorskip("cv2")
        path = vio.write_mp4(_big_frames(), tmp_path / "big.mp4")
    else:
        vio.write_png_frames(_big_frames(), tmp_path / "frames")
        path = tmp_path / "frames"
    assert sum(f.stat().st_size for f in ([path] if path.is_file() else list(path.iterdir()))) < 200_000
    video, _ = vio.read_video(path, max_pixels=3 * 200 * 300)  # the oracle: exactly at the budget
    assert tuple(video.shape) == (3, 200, 300, 3)

    def no_decoding(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("decoded a clip above the budget")

    monkeypatch.setattr(vio, "_decode", no_decoding)
    monkeypatch.setattr(vio, "_resize_frame", no_decoding)
    with pytest.raises(VideoError) as err:
        vio.read_video(path, max_pixels=3 * 200 * 300 - 1)
    msg = str(err.value)
    assert "3 frames of 200x300 = 180000 pixels" in msg and "limit of 179999 pixels" in msg
    assert "no --size was given" in msg and "Pass --size" in msg and "max_pixels" in msg


def test_pixel_budget_counts_the_resized_clip(tmp_path: Path) -> None:
    from removalx.errors import VideoError
    from removalx.video import io as vio

    path = vio.write_gif(_big_frames(), tmp_path / "big.gif")
    video, _ = vio.read_video(path, size=(20, 30), max_pixels=3 * 20 * 30)  # resized: fits
    assert tuple(video.shape) == (3, 20, 30, 3)
    with pytest.raises(
        VideoError, match=r"(?s)3 frames of 20x30 = 1800 pixels .*Pass fewer --frames or a smaller"
    ):
        vio.read_video(path, size=(20, 30), max_pixels=1799)
    with pytest.raises(VideoError, match="max_pixels must be a positive int"):
        vio.read_video(path, max_pixels=0)
    # The default: 2**27 pixels, e.g. 8 frames of 4000 x 4000 (128 M) fit, 9 do not.
    assert vio.MAX_CLIP_PIXELS == 2**27
    vio._check_pixels(8, (4000, 4000), vio.MAX_CLIP_PIXELS, "v", None)
    with pytest.raises(VideoError, match="9 frames of 4000x4000"):
        vio._check_pixels(9, (4000, 4000), vio.MAX_CLIP_PIXELS, "v", None)
