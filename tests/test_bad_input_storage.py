"""Hostile or damaged files: attribution files and model weights load safely or fail clearly.

A crafted pickle must never run (a marker file proves it), a damaged or foreign file gives a
RemovalxError naming what is wrong, and a failed save leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import removalx
from removalx.core.types import Attribution, PartitionSpace
from removalx.errors import ModelError, RemovalxError, StorageError
from removalx.zoo.models import WEIGHTS_DIR, load_zoo_model


class Evil:
    """Unpickling this object runs ``os.system`` (it touches the file named by its argument)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch '{self.marker}'",))


def _attribution() -> Attribution:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(6).view(2, 3, 4)  # features 0..3, six pixels each
    return Attribution(
        values=torch.rand(2, 3, 4, generator=g),
        target=3,
        feature_values=torch.tensor([0.5, -1.0, 2.0, 0.25]),
        space=PartitionSpace(labels),
        meta={"recipe": {"name": "lime3d", "cells": (1, 2, 2)}, "seed": 7, "n_forward": 9},
    )


def _npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    return path


def _text(obj: object) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)


def _valid_arrays() -> dict[str, np.ndarray]:
    return {
        "format": _text({"name": "removalx.attribution", "version": 1}),
        "values": np.zeros((2, 3, 4), np.float32),
        "target": _text(1),
        "meta": _text({}),
    }


# -- round trip ------------------------------------------------------------------------------------
def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    a = _attribution()
    p = a.save(tmp_path / "sub" / "a.npz")
    assert p == tmp_path / "sub" / "a.npz" and zipfile.is_zipfile(p)
    b = Attribution.load(p)
    assert torch.equal(b.values, a.values) and b.values.dtype == torch.float32
    assert b.feature_values is not None and torch.equal(b.feature_values, a.feature_values)
    assert b.target == 3
    assert isinstance(b.space, PartitionSpace) and torch.equal(b.space.labels, a.space.labels)  # type: ignore[union-attr]
    assert b.meta == {"recipe": {"name": "lime3d", "cells": [1, 2, 2]}, "seed": 7, "n_forward": 9}
    assert sorted(os.listdir(tmp_path / "sub")) == ["a.npz"]  # no temporary file left behind


def test_round_trip_without_optional_parts(tmp_path: Path) -> None:
    a = Attribution(values=torch.ones(1, 2, 2), target=0)
    b = Attribution.load(a.save(tmp_path / "a.npz"))
    assert torch.equal(b.values, a.values) and b.feature_values is None and b.space is None and b.meta == {}


def test_meta_is_made_json_safe(tmp_path: Path) -> None:
    class Opaque:
        pass

    meta = {
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": -float("inf"),
        "np_int": np.int64(5),
        "np_float": np.float32(0.5),
        "small": torch.tensor([[1.0, 2.0]]),
        "scalar": torch.tensor(3),
        "big": torch.zeros(5000),
        "path": Path("/data/clip.mp4"),
        "obj": Opaque(),
        "nested": {1: (True, None, [float("nan")])},
    }
    b = Attribution.load(
        Attribution(values=torch.zeros(1, 1, 1), target=0, meta=meta).save(tmp_path / "m.npz")
    )
    m = b.meta
    assert math.isnan(m["nan"]) and m["inf"] == math.inf and m["ninf"] == -math.inf
    assert m["np_int"] == 5 and type(m["np_int"]) is int and m["np_float"] == 0.5
    assert m["small"] == [[1.0, 2.0]] and m["scalar"] == 3 and m["path"] == "/data/clip.mp4"
    assert m["nested"]["1"][:2] == [True, None] and math.isnan(m["nested"]["1"][2][0])
    assert "big" not in m and "obj" not in m
    notes = m["dropped_on_save"]
    assert (
        len(notes) == 2
        and "meta.big" in notes[0]
        and "(5000,)" in notes[0]
        and "meta.obj: a Opaque" in notes[1]
    )
    # the stored meta is strict JSON (no NaN tokens): any JSON reader can parse it
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        json.loads(
            z["meta"].tobytes().decode(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}")
        )


def test_explain_result_round_trips(tmp_path: Path) -> None:
    from removalx.testing import ToyClassifier, tiny_video

    a = removalx.explain(
        removalx.VideoClassifier(ToyClassifier()),
        tiny_video(),
        recipe="lime3d",
        overrides={
            "segmentation.name": "grid3d",
            "segmentation.cells": [2, 2, 2],
            "sample_selection.n_samples": 4,
        },
        progress=False,
    )
    b = Attribution.load(a.save(tmp_path / "a.npz"))
    assert torch.equal(b.values, a.values) and torch.equal(b.feature_values, a.feature_values)  # type: ignore[arg-type]
    assert torch.equal(b.space.labels, a.space.labels)  # type: ignore[union-attr]
    assert b.meta["recipe"] == json.loads(json.dumps(a.meta["recipe"]))
    assert b.meta["n_forward"] == a.meta["n_forward"] and b.meta["plan_digest"] == a.meta["plan_digest"]


def test_legacy_pt_of_plain_data_still_loads(tmp_path: Path) -> None:
    a = _attribution()
    payload = {
        "values": a.values,
        "feature_values": a.feature_values,
        "target": 3,
        "labels": a.space.labels,
        "meta": {"seed": 7, "timings": {"total": 1.5}},
    }  # type: ignore[union-attr]
    torch.save(payload, tmp_path / "old.pt")
    b = Attribution.load(tmp_path / "old.pt")
    assert torch.equal(b.values, a.values) and torch.equal(b.feature_values, a.feature_values)  # type: ignore[arg-type]
    assert b.target == 3 and b.meta == {"seed": 7, "timings": {"total": 1.5}}
    assert torch.equal(b.space.labels, a.space.labels)  # type: ignore[union-attr]


# -- crafted files never run code -------------------------------------------------------------------
def _evil_torch_zip(path: Path, marker: Path) -> None:
    torch.save({"values": Evil(marker), "target": 0}, path)


def _evil_raw_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"values": Evil(marker), "target": 0}, protocol=2))


def _evil_npz_member(path: Path, marker: Path) -> None:
    arrays = _valid_arrays()
    arrays["meta"] = np.array([Evil(marker)], dtype=object)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("write", "name", "needle"),
    [
        (_evil_torch_zip, "attribution.pt", "does not unpickle"),
        (_evil_raw_pickle, "attribution.pt", "does not unpickle"),
        (_evil_npz_member, "attribution.npz", "Object arrays cannot be loaded"),
    ],
    ids=["torch-zip", "raw-pickle", "npz-object-array"],
)
def test_crafted_file_does_not_run_code(tmp_path: Path, write, name: str, needle: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / name
    write(path, marker)
    # control: the file really is an exploit when unpickled the unsafe way
    if path.suffix == ".pt":
        with contextlib.suppress(Exception):  # the raw pickle also fails torch's magic-number check
            torch.load(path, weights_only=False)
    else:
        with np.load(path, allow_pickle=True) as z:
            z["meta"]
    assert marker.exists(), "the crafted file should run code when unpickled unsafely"
    marker.unlink()
    with pytest.raises(StorageError) as err:
        Attribution.load(path)
    assert not marker.exists()
    assert needle in str(err.value)
    assert "weights_only=False" not in str(err.value)  # no advice to switch the safety off


# -- damaged or foreign files ----------------------------------------------------------------------
def _truncated(path: Path) -> None:
    _attribution().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _member(**changes: np.ndarray):  # type: ignore[no-untyped-def]
    def write(path: Path) -> None:
        arrays = _valid_arrays()
        for k, v in changes.items():
            if v is None:
                arrays.pop(k)
            else:
                arrays[k] = v
        _npz(path, arrays)

    return write


def _huge_header(path: Path) -> None:
    """A 100-byte ``values`` member whose header claims a terabyte-sized array."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (2**20, 2**20, 256)}
    )
    arrays = {k: v for k, v in _valid_arrays().items() if k != "values"}
    _npz(path, arrays)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("values.npy", header.getvalue() + b"\0" * 16)


BAD_FILES = [
    ("empty", lambda p: p.write_bytes(b""), "not an attribution file"),
    ("text", lambda p: p.write_text("values,target\n1,2\n"), "not an attribution file"),
    ("random-bytes", lambda p: p.write_bytes(bytes(range(256)) * 4), "not an attribution file"),
    ("truncated-npz", _truncated, "damaged zip archive"),
    ("foreign-npz", lambda p: _npz(p, {"x": np.zeros(3)}), "lacks the arrays format, values, target, meta"),
    ("no-values", _member(values=None), "lacks the arrays values"),
    ("values-2d", _member(values=np.zeros((3, 4), np.float32)), "'values' must be a numeric [T, H, W] array"),
    ("values-strings", _member(values=np.full((1, 1, 2), "a")), "'values' must be a numeric"),
    ("meta-not-json", _member(meta=np.frombuffer(b"{oops", np.uint8)), "'meta' is not valid UTF-8 JSON"),
    ("meta-not-utf8", _member(meta=np.frombuffer(b"\xff\xfe", np.uint8)), "'meta' is not valid UTF-8 JSON"),
    ("meta-a-list", _member(meta=_text([1, 2])), "'meta' must be a JSON object"),
    ("meta-float-array", _member(meta=np.zeros(3)), "'meta' must be UTF-8 JSON text as uint8[N]"),
    ("target-negative", _member(target=_text(-1)), "'target' must be a class index"),
    ("target-float", _member(target=_text(1.5)), "'target' must be a class index"),
    ("foreign-format", _member(format=_text({"name": "other"})), "expected name 'removalx.attribution'"),
    (
        "newer-format",
        _member(format=_text({"name": "removalx.attribution", "version": 99})),
        "newer removalx",
    ),
    (
        "labels-wrong-shape",
        _member(labels=np.zeros((1, 1, 1), np.int64)),
        "'labels' must be an integer array",
    ),
    ("labels-negative", _member(labels=np.full((2, 3, 4), -1, np.int64)), "feature indices >= 0"),
    (
        "labels-beyond-features",
        _member(labels=np.full((2, 3, 4), 5, np.int64), feature_values=np.zeros(2, np.float32)),
        "name feature 5 but there are 2 feature values",
    ),
    ("huge-header", _huge_header, "declares shape"),
    ("pt-list", lambda p: torch.save([1, 2, 3], p), "holds a list, expected a dict"),
    ("pt-values-not-tensor", lambda p: torch.save({"values": [1.0], "target": 0}, p), "'values' is a list"),
    ("pt-garbage-after-magic", lambda p: p.write_bytes(b"\x80\x02garbage"), "Cannot load"),
]


@pytest.mark.parametrize(
    ("write", "needle"), [(w, n) for _, w, n in BAD_FILES], ids=[i for i, _, _ in BAD_FILES]
)
def test_damaged_or_foreign_file_is_a_clear_error(tmp_path: Path, write, needle: str) -> None:
    path = tmp_path / "attribution.npz"
    write(path)
    with pytest.raises(StorageError) as err:
        Attribution.load(path)
    msg = str(err.value)
    assert needle in msg, msg
    assert "Fix:" in msg and len(msg) < 1200


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="No attribution file at"):
        Attribution.load(tmp_path / "nope.npz")


def test_storage_error_is_a_removalx_error() -> None:
    assert issubclass(StorageError, RemovalxError)


# -- nothing written half-way ------------------------------------------------------------------------
def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _attribution().save(tmp_path / "a.npz")
    before = path.read_bytes()

    def broken(fh, **arrays):  # type: ignore[no-untyped-def]
        fh.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(StorageError, match="disk full"):
        Attribution(values=torch.zeros(1, 1, 1), target=0).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.npz"]


def test_save_over_a_folder_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "out.npz").mkdir()
    with pytest.raises(StorageError, match="Cannot write the attribution file"):
        Attribution(values=torch.zeros(1, 1, 1), target=0).save(tmp_path / "out.npz")
    assert os.listdir(tmp_path) == ["out.npz"] and os.listdir(tmp_path / "out.npz") == []


def test_save_keeps_permissions_of_a_new_file(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    p = Attribution(values=torch.zeros(1, 1, 1), target=0).save(tmp_path / "a.npz")
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


# -- model weights ----------------------------------------------------------------------------------
@pytest.fixture
def zoo_dir(tmp_path: Path) -> Path:
    d = tmp_path / "weights"
    d.mkdir()
    for ext in ("pt", "json"):
        shutil.copy(WEIGHTS_DIR / f"r3d_tiny.{ext}", d / f"r3d_tiny.{ext}")
    return d


def _meta_without(key: str):  # type: ignore[no-untyped-def]
    def write(d: Path) -> None:
        meta = json.loads((WEIGHTS_DIR / "r3d_tiny.json").read_text())
        meta.pop(key)
        (d / "r3d_tiny.json").write_text(json.dumps(meta))

    return write


def _meta_with(**changes: object):  # type: ignore[no-untyped-def]
    def write(d: Path) -> None:
        meta = json.loads((WEIGHTS_DIR / "r3d_tiny.json").read_text())
        meta.update(changes)
        (d / "r3d_tiny.json").write_text(json.dumps(meta))

    return write


BAD_ZOO = [
    (
        "pt-garbage",
        lambda d: (d / "r3d_tiny.pt").write_bytes(os.urandom(64) + b"x" * 64),
        "is damaged or not a file",
    ),
    ("pt-empty", lambda d: (d / "r3d_tiny.pt").write_bytes(b""), "is damaged or not a file"),
    ("pt-list", lambda d: torch.save([1, 2], d / "r3d_tiny.pt"), "hold a list, expected a state_dict"),
    (
        "pt-dict-of-strings",
        lambda d: torch.save({"conv.weight": "x"}, d / "r3d_tiny.pt"),
        "with non-tensor values, expected a state_dict",
    ),
    (
        "pt-wrong-keys",
        lambda d: torch.save({"w": torch.zeros(1)}, d / "r3d_tiny.pt"),
        "do not fit the 'r3d_tiny'",
    ),
    ("json-broken", lambda d: (d / "r3d_tiny.json").write_text('{"class_names": ['), "is not valid JSON"),
    ("json-a-list", lambda d: (d / "r3d_tiny.json").write_text("[1, 2]"), "holds a JSON list"),
    ("json-not-utf8", lambda d: (d / "r3d_tiny.json").write_bytes(b"\xff\xfe{}"), "cannot read metadata"),
    ("json-no-classes", _meta_without("class_names"), "class_names must be a non-empty list of strings"),
    ("json-classes-ints", _meta_with(class_names=[1, 2]), "class_names must be a non-empty list of strings"),
    ("json-no-size", _meta_without("input_size"), "input_size must be [T, H, W]"),
    ("json-size-bad", _meta_with(input_size=[16, "56", 56]), "input_size must be [T, H, W]"),
    ("json-missing", lambda d: (d / "r3d_tiny.json").unlink(), "no metadata for zoo model"),
]


@pytest.mark.parametrize(
    ("damage", "needle"), [(w, n) for _, w, n in BAD_ZOO], ids=[i for i, _, _ in BAD_ZOO]
)
def test_damaged_zoo_weights_are_a_model_error(zoo_dir: Path, damage, needle: str) -> None:
    damage(zoo_dir)
    with pytest.raises(ModelError) as err:
        load_zoo_model("r3d_tiny", weights_dir=zoo_dir)
    assert needle in str(err.value), str(err.value)
    assert "Fix:" in str(err.value)


def test_undamaged_copy_loads(zoo_dir: Path) -> None:  # the oracle of the table above
    model, meta = load_zoo_model("r3d_tiny", weights_dir=zoo_dir)
    assert meta["class_names"] and not model.training


def test_crafted_zoo_weights_do_not_run_code(zoo_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"conv.weight": Evil(marker)}, zoo_dir / "r3d_tiny.pt")
    with pytest.raises(ModelError, match="does not unpickle") as err:
        load_zoo_model("r3d_tiny", weights_dir=zoo_dir)
    assert not marker.exists()
    assert "weights_only=False" not in str(err.value)


def test_zoo_plugin_reports_damaged_weights(zoo_dir: Path) -> None:
    from removalx.core.registry import get_registry

    (zoo_dir / "r3d_tiny.pt").write_bytes(b"not weights at all")
    with pytest.raises(ModelError, match="r3d_tiny"):
        get_registry().make("model", "zoo", {"target": "r3d_tiny", "weights": str(zoo_dir)})


def test_crafted_adapter_weights_do_not_run_code(tmp_path: Path) -> None:
    from removalx_plugins.models._weights import load_weights

    marker = tmp_path / "pwned"
    path = tmp_path / "w.pt"
    torch.save({"weight": Evil(marker)}, path)
    with pytest.raises(ModelError, match="does not unpickle"):
        load_weights(torch.nn.Linear(2, 2), str(path), "python:model")
    assert not marker.exists()
