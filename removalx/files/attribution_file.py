"""The attribution file: what :meth:`Attribution.save` writes and :meth:`Attribution.load` reads.

An attribution file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, no pickle) with

* ``values`` -- the ``[T, H, W]`` map;
* ``feature_values`` -- the ``[F]`` per-feature values (only when the attribution has them);
* ``labels`` -- the ``[T, H, W]`` feature index per pixel of a partition space (only then);
* ``format``, ``target`` and ``meta`` -- UTF-8 JSON text stored as ``uint8`` arrays.

``meta`` is made JSON-safe on save: tuples become lists, NumPy scalars Python numbers, small
tensors and arrays nested lists, non-finite floats ``{"$float": "nan" | "inf" | "-inf"}``
(turned back into floats on load); what cannot be represented (a large tensor, an arbitrary
object) is dropped and named in ``meta["dropped_on_save"]``. Files are written atomically.

Reading never runs code from the file: ``.npz`` members are read with ``allow_pickle=False``;
files of removalx 0.x (``torch.save`` of a dict) are read with ``torch.load(weights_only=True)``,
which refuses anything but tensors and plain Python data.
"""

from __future__ import annotations

import json
import math
import os
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from removalx.errors import StorageError, truncate
from removalx.files.atomic import atomic_write, storage_errors
from removalx.files.torchfile import load_plain

__all__ = [
    "FORMAT",
    "VERSION",
    "AttributionRecord",
    "from_json_safe",
    "load_attribution",
    "save_attribution",
    "to_json_safe",
]

FORMAT = "removalx.attribution"
VERSION = 1
#: Tensors and arrays in ``meta`` with more elements than this are dropped on save.
MAX_META_ELEMENTS = 4096
#: Largest JSON member (``meta``, ``target``, ``format``) a file may declare.
MAX_JSON_BYTES = 64 * 2**20
#: Largest total uncompressed size of the arrays of an attribution file (2 GiB): a zip of
#: deflated zeros is tiny on disk but inflates to its declared size on load. Raise it with
#: ``load_attribution(path, max_bytes=...)`` or the environment variable below.
MAX_TOTAL_BYTES = 2 * 2**30
#: Environment variable overriding :data:`MAX_TOTAL_BYTES` (a number of bytes).
MAX_BYTES_ENV = "REMOVALX_MAX_ATTRIBUTION_BYTES"
_MAX_DEPTH = 64
_REQUIRED = ("format", "values", "target", "meta")
_FIX_RECREATE = "Re-create the file with `removalx explain` or Attribution.save()."


def _clip(text: object, n: int = 200) -> str:
    return truncate(str(text), n)


# -- JSON-safe meta ----------------------------------------------------------------------------
def to_json_safe(obj: Any, dropped: list[str] | None = None, where: str = "meta", _depth: int = 0) -> Any:
    """A copy of ``obj`` that :func:`json.dumps` accepts with ``allow_nan=False``.

    Parameters
    ----------
    obj : Any
        Typically ``Attribution.meta``.
    dropped : list of str, optional
        Receives one note per value that could not be represented (and was left out).
    where : str
        Name of ``obj`` in those notes.

    Returns
    -------
    Any
        Dicts (string keys), lists, strings, finite floats, ints, bools, ``None`` and
        ``{"$float": "nan" | "inf" | "-inf"}`` for non-finite floats.
    """
    notes = dropped if dropped is not None else []
    if _depth > _MAX_DEPTH:
        notes.append(f"{where}: nested deeper than {_MAX_DEPTH} levels")
        return None
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if math.isfinite(obj):
            return float(obj)
        return {"$float": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
    if isinstance(obj, np.generic):
        return to_json_safe(obj.item(), notes, where, _depth + 1)
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        n = int(obj.numel()) if isinstance(obj, torch.Tensor) else int(obj.size)
        if n > MAX_META_ELEMENTS:
            notes.append(f"{where}: array of shape {tuple(obj.shape)} (more than {MAX_META_ELEMENTS} values)")
            return None
        data = obj.detach().cpu().tolist() if isinstance(obj, torch.Tensor) else obj.tolist()
        return to_json_safe(data, notes, where, _depth + 1)
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = str(k)
            value = to_json_safe(v, notes, f"{where}.{key}", _depth + 1)
            if value is not None or v is None:
                out[key] = value
        return out
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v, notes, f"{where}[{i}]", _depth + 1) for i, v in enumerate(obj)]
    if isinstance(obj, Path):
        return str(obj)
    notes.append(f"{where}: a {type(obj).__name__} (not representable as JSON)")
    return None


def from_json_safe(obj: Any) -> Any:
    """Inverse of :func:`to_json_safe` for non-finite floats (``{"$float": "nan"}`` -> ``nan``)."""
    if isinstance(obj, dict):
        if len(obj) == 1 and obj.get("$float") in ("nan", "inf", "-inf"):
            return float(obj["$float"])
        return {k: from_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_json_safe(v) for v in obj]
    return obj


def _json_array(obj: Any) -> np.ndarray:
    text = json.dumps(obj, allow_nan=False, ensure_ascii=False, sort_keys=False)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


# -- save ---------------------------------------------------------------------------------------
def _tensor_array(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16 or t.is_complex():
        t = t.float()
    return t.contiguous().numpy()


@dataclass
class AttributionRecord:
    """What an attribution file holds, independent of the engine's :class:`Attribution` type.

    :meth:`removalx.core.types.Attribution.save` and ``load`` convert to and from it.

    Attributes
    ----------
    values : Tensor
        ``[T, H, W]`` attribution values.
    target : int
        The explained class index.
    feature_values : Tensor or None
        ``[F]`` values of the features.
    labels : Tensor or None
        ``int64[T, H, W]`` feature index of every pixel (a partition), if known.
    meta : dict
        JSON-safe metadata.
    """

    values: torch.Tensor
    target: int
    feature_values: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def save_attribution(attr: AttributionRecord, path: str | Path) -> Path:
    """Write ``attr`` to ``path`` as an attribution ``.npz`` (atomically; see the module doc).

    The file is written exactly at ``path`` whatever its suffix; use ``.npz``.
    """
    path = Path(path)
    dropped: list[str] = []
    meta = to_json_safe(dict(attr.meta), dropped)
    if dropped:
        meta["dropped_on_save"] = [*meta.get("dropped_on_save", []), *dropped]
    arrays: dict[str, np.ndarray] = {
        "format": _json_array({"name": FORMAT, "version": VERSION}),
        "values": _tensor_array(attr.values),
        "target": _json_array(int(attr.target)),
        "meta": _json_array(meta),
    }
    if attr.feature_values is not None:
        arrays["feature_values"] = _tensor_array(attr.feature_values)
    labels = attr.labels
    if isinstance(labels, torch.Tensor):
        lab = labels.detach().cpu().long()
        arrays["labels"] = (
            lab.to(torch.int32).numpy() if lab.numel() and int(lab.max()) < 2**31 else lab.numpy()
        )
    with storage_errors(path, "the attribution file"), atomic_write(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
    return path


# -- load ---------------------------------------------------------------------------------------
def load_attribution(path: str | Path, max_bytes: int | None = None) -> AttributionRecord:
    """Read an attribution file (``.npz``, or a ``.pt`` of removalx 0.x); never runs code from it.

    Parameters
    ----------
    path : str or Path
        The file.
    max_bytes : int, optional
        Largest total uncompressed size of the file's members, checked before anything is
        inflated (default: the environment variable ``REMOVALX_MAX_ATTRIBUTION_BYTES``, else
        :data:`MAX_TOTAL_BYTES`, 2 GiB).

    Raises
    ------
    StorageError
        The file is missing, damaged, not an attribution file, larger than ``max_bytes`` once
        inflated, holds an empty map or values of a type torch cannot hold (``float128``), or
        would need unpickling of arbitrary Python objects.
    """
    path = Path(path)
    limit = _max_bytes(max_bytes)
    if not path.is_file():
        raise StorageError(
            f"No attribution file at {_clip(path, 300)}.",
            "Pass the attribution.npz written by `removalx explain` or Attribution.save().",
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise StorageError(
            f"Cannot read {_clip(path, 300)}: {_clip(exc)}.", "Check the path and permissions."
        ) from exc
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise StorageError(
                f"{_clip(path, 300)} is a damaged zip archive ({_clip(exc)}).", _FIX_RECREATE
            ) from exc
        _check_total_size(path, infos, limit)
        if any(i.filename.endswith("data.pkl") for i in infos):
            return _load_torch(path)
        return _load_npz(path, infos)
    if head[:1] == b"\x80":  # a pickle stream: torch.save's legacy (non-zip) format
        return _load_torch(path)
    raise StorageError(
        f"{_clip(path, 300)} is not an attribution file (expected a .npz archive; the file starts with "
        f"{head!r}).",
        "Pass the attribution.npz written by `removalx explain` or Attribution.save().",
    )


def _max_bytes(max_bytes: int | None) -> int:
    """The size bound of :func:`load_attribution`: ``max_bytes``, else the environment's, else 2 GiB."""
    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise StorageError(
                f"max_bytes must be a positive number of bytes, got {_clip(repr(max_bytes), 40)}.",
                "Pass e.g. max_bytes=4 * 2**30 for 4 GiB.",
            )
        return max_bytes
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return MAX_TOTAL_BYTES
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise StorageError(
            f"{MAX_BYTES_ENV} must be a positive whole number of bytes, got {_clip(raw, 40)!r}.",
            f"Set e.g. {MAX_BYTES_ENV}={4 * 2**30} (4 GiB), or unset it for the default of 2 GiB.",
        )
    return int(raw)


def _check_total_size(path: Path, infos: list[zipfile.ZipInfo], limit: int) -> None:
    """Refuse an archive whose members declare more than ``limit`` bytes in total, uncompressed.

    Python's zip reader never inflates a member past its declared size (and a member that
    inflates to a different size fails its CRC check), so bounding the declared sizes bounds
    what loading can allocate.
    """
    total = sum(max(int(i.file_size), 0) for i in infos)
    if total > limit:
        raise StorageError(
            f"{_clip(path, 300)} inflates to {total} bytes ({total / 2**30:.2f} GiB) when loaded, more "
            f"than the limit of {limit} bytes ({limit / 2**30:.2f} GiB); a small file that inflates this "
            "much is a zip bomb, not an attribution.",
            f"If you trust the file, raise the limit: load_attribution(path, max_bytes=...) or set "
            f"{MAX_BYTES_ENV} to a number of bytes.",
        )


def _damaged(path: Path, why: str) -> StorageError:
    return StorageError(f"{_clip(path, 300)} is not a valid attribution file: {why}.", _FIX_RECREATE)


def _read_json(arr: np.ndarray, name: str, path: Path) -> Any:
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise _damaged(
            path, f"{name!r} must be UTF-8 JSON text as uint8[N], got {arr.dtype}{list(arr.shape)}"
        )
    try:
        return from_json_safe(json.loads(arr.tobytes().decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _damaged(path, f"{name!r} is not valid UTF-8 JSON ({_clip(exc, 120)})") from exc


def _load_npz(path: Path, infos: list[zipfile.ZipInfo]) -> AttributionRecord:
    names = {i.filename[:-4] for i in infos if i.filename.endswith(".npy")}
    missing = [k for k in _REQUIRED if k not in names]
    if missing:
        shown = ", ".join(sorted(_clip(n, 40) for n in names)[:8]) or "none"
        raise StorageError(
            f"{_clip(path, 300)} is not an attribution file: it lacks the arrays {', '.join(missing)} "
            f"(arrays found: {shown}).",
            "Pass the attribution.npz written by `removalx explain` or Attribution.save().",
        )
    for info in infos:
        if info.filename[:-4] in ("format", "target", "meta") and info.file_size > MAX_JSON_BYTES:
            raise _damaged(
                path, f"{info.filename!r} declares {info.file_size} bytes (at most {MAX_JSON_BYTES})"
            )
    try:
        _check_array_sizes(path, infos)
        with np.load(path, allow_pickle=False) as z:
            fmt = _read_json(z["format"], "format", path)
            if not isinstance(fmt, dict) or fmt.get("name") != FORMAT:
                raise _damaged(path, f"its format is {_clip(fmt, 80)!s}, expected name {FORMAT!r}")
            version = fmt.get("version")
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise _damaged(path, f"format version {_clip(version, 40)} is not a positive integer")
            if version > VERSION:
                raise StorageError(
                    f"{_clip(path, 300)} was written by a newer removalx (attribution format version {version}; "
                    f"this version reads up to {VERSION}).",
                    "Upgrade removalx: pip install -U removalx.",
                )
            arrays = {k: z[k] for k in ("values", "feature_values", "labels") if k in names}
            target = _read_json(z["target"], "target", path)
            meta = _read_json(z["meta"], "meta", path)
    except StorageError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, RuntimeError, MemoryError) as exc:
        raise _damaged(path, f"{type(exc).__name__}: {_clip(exc)}") from exc
    return _build(
        path, arrays.get("values"), arrays.get("feature_values"), arrays.get("labels"), target, meta
    )


def _check_array_sizes(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a member whose ``.npy`` header promises more data than the member holds.

    NumPy allocates the whole array before reading it: a tiny file claiming a huge shape
    would otherwise exhaust memory.
    """
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as fh:
                shape, dtype = _read_header(path, info.filename, fh)
            n = math.prod(shape) * (dtype.itemsize or 1)
            if n > info.file_size:
                raise _damaged(
                    path,
                    f"{_clip(info.filename, 60)!r} declares shape {_clip(shape, 80)} of {dtype} "
                    f"({n} bytes) but holds {info.file_size} bytes",
                )


def _read_header(path: Path, name: str, fh: Any) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` of a ``.npy`` member's header; any malformation is a :class:`StorageError`.

    NumPy parses the header with :func:`ast.literal_eval`, which raises more than ``ValueError``
    on hostile text (``tokenize.TokenError``, ``SyntaxError``, ``RecursionError``, ...). Version
    3.0 headers (UTF-8) have the layout of version 2.0 and are read as such, so their declared
    size is checked too.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, TypeError, SyntaxError, tokenize.TokenError, RecursionError, MemoryError) as exc:
        raise _damaged(
            path, f"{_clip(name, 60)!r} has a malformed .npy header ({type(exc).__name__}: {_clip(exc, 120)})"
        ) from exc
    return tuple(int(d) for d in shape), dtype


def _load_torch(path: Path) -> AttributionRecord:
    payload = load_plain(
        path,
        StorageError,
        f"{_clip(path, 300)} as a .pt attribution file",
        "Re-create the attribution with `removalx explain` (it writes attribution.npz).",
    )
    if not isinstance(payload, dict) or "values" not in payload or "target" not in payload:
        kind = (
            f"a dict with keys {_clip(sorted(map(str, payload))[:8])}"
            if isinstance(payload, dict)
            else (f"a {type(payload).__name__}")
        )
        raise _damaged(path, f"it holds {kind}, expected a dict with 'values' and 'target'")

    def arr(key: str) -> np.ndarray | None:
        v = payload.get(key)
        if v is None:
            return None
        if not isinstance(v, torch.Tensor):
            raise _damaged(path, f"{key!r} is a {type(v).__name__}, expected a tensor")
        return _tensor_array(v)

    target = payload["target"]
    if isinstance(target, torch.Tensor) and target.numel() == 1 and not target.is_floating_point():
        target = int(target.item())
    meta = payload.get("meta", {})
    return _build(path, arr("values"), arr("feature_values"), arr("labels"), target, meta)


def _build(
    path: Path,
    values: np.ndarray | None,
    feature_values: np.ndarray | None,
    labels: np.ndarray | None,
    target: Any,
    meta: Any,
) -> AttributionRecord:
    def numeric(a: np.ndarray, name: str, ndim: int, what: str) -> torch.Tensor:
        if a.dtype.kind not in "biuf" or a.ndim != ndim:
            raise _damaged(path, f"{name!r} must be {what}, got {a.dtype}{list(a.shape)}")
        return _to_tensor(path, name, a)

    if values is None:
        raise _damaged(path, "it has no 'values'")
    vals = numeric(values, "values", 3, "a numeric [T, H, W] array")
    if vals.numel() == 0:
        raise _damaged(
            path, f"'values' is an empty map of shape {list(vals.shape)} (T, H and W must be >= 1)"
        )
    fv = (
        None
        if feature_values is None
        else numeric(feature_values, "feature_values", 1, "a numeric [F] array")
    )
    labels_t: torch.Tensor | None = None
    if labels is not None:
        if labels.dtype.kind not in "iu" or labels.shape != values.shape:
            raise _damaged(
                path,
                f"'labels' must be an integer array of the values' shape {list(values.shape)}, "
                f"got {labels.dtype}{list(labels.shape)}",
            )
        lab = _to_tensor(path, "labels", labels).long()
        if lab.numel() == 0 or int(lab.min()) < 0:
            raise _damaged(path, "'labels' must be non-empty feature indices >= 0")
        if fv is not None and int(lab.max()) >= fv.numel():
            raise _damaged(
                path, f"'labels' name feature {int(lab.max())} but there are {fv.numel()} feature values"
            )
        labels_t = lab
    if not isinstance(target, int) or isinstance(target, bool) or target < 0:
        raise _damaged(path, f"'target' must be a class index (integer >= 0), got {_clip(repr(target), 60)}")
    if not isinstance(meta, dict):
        raise _damaged(path, f"'meta' must be a JSON object, got {type(meta).__name__}")
    return AttributionRecord(values=vals, target=target, feature_values=fv, labels=labels_t, meta=meta)


#: NumPy dtypes a tensor can hold (torch.from_numpy refuses float128, half-precision complex, ...).
_TORCH_DTYPES = frozenset(
    np.dtype(t)
    for t in (
        *(np.bool_, np.uint8, np.uint16, np.uint32, np.uint64),
        *(np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64),
    )
)


def _to_tensor(path: Path, name: str, a: np.ndarray) -> torch.Tensor:
    """A native-byte-order copy of ``a`` as a tensor; a type torch cannot hold is a :class:`StorageError`.

    Big-endian arrays (written on another machine, or crafted) are valid ``.npy`` data and are
    converted to the native byte order; ``float128`` and other types ``torch.from_numpy``
    does not take are refused.
    """
    native = a.dtype.newbyteorder("=")
    if native not in _TORCH_DTYPES:
        raise _damaged(
            path,
            f"{name!r} has dtype {a.dtype.name}, which torch cannot hold; expected bool, "
            "int8-int64, uint8-uint64 or float16-float64",
        )
    return torch.from_numpy(np.ascontiguousarray(a, dtype=native).copy())
