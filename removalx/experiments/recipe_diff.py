"""A resolved recipe as a diff against its base recipe, in words a methods section can use.

:func:`recipe_changes` compares two recipe dicts (``Recipe.to_dict()``) key by key (dotted keys,
``removal.sigma``); :func:`format_changes` writes them, a stage whose plugin was swapped as one
item with its new settings (``removal: blur with sigma=10 (default) instead of constant
with value=0``) and every value that is its plugin's default marked ``(default)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MISSING", "Change", "common_changes", "fmt_value", "format_changes", "recipe_changes"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: The side of a :class:`Change` on which a key does not exist.
MISSING: Any = _Missing()
#: Top-level recipe keys that are not settings of the method (the seed is reported apart).
IGNORED = ("name", "description", "reference", "seed")


@dataclass(frozen=True)
class Change:
    """One dotted key whose value differs: ``before`` in the base recipe, ``after`` in the method."""

    key: str
    before: Any
    after: Any


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if not prefix and k in IGNORED:
            continue
        if isinstance(v, Mapping):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def recipe_changes(base: Mapping[str, Any] | None, recipe: Mapping[str, Any] | None) -> list[Change]:
    """Every dotted key whose value differs between ``base`` and ``recipe``, in ``recipe``'s order."""
    if base is None or recipe is None:
        return []
    a, b = _flat(base), _flat(recipe)
    keys = list(b) + [k for k in a if k not in b]
    return [
        Change(k, a.get(k, MISSING), b.get(k, MISSING))
        for k in keys
        if a.get(k, MISSING) != b.get(k, MISSING)
    ]


def common_changes(per_method: list[list[Change]]) -> list[Change]:
    """The changes every method has (e.g. the ``--set`` overrides of an ablation), in order."""
    if len(per_method) < 2:
        return []
    return [c for c in per_method[0] if all(c in other for other in per_method[1:])]


def fmt_value(v: Any) -> str:
    """A recipe value as written in the report: ``10``, ``0.25``, ``[1,2,2]``, ``none``."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(fmt_value(x) for x in v) + "]"
    return str(v)


def _setting(key: str, value: Any, defaults: set[str]) -> str:
    name = key.split(".", 1)[1] if "." in key else key
    return f"{name}={fmt_value(value)}" + (" (default)" if key in defaults else "")


def _swapped_stages(changes: Iterable[Change]) -> dict[str, Change]:
    return {c.key[: -len(".name")]: c for c in changes if c.key.endswith(".name") and c.key.count(".") == 1}


def _stage_phrase(
    stage: str, c: Change, changes: list[Change], marked: set[str], old_cfg: Any, max_old: int
) -> str:
    """``removal: blur with sigma=10 (default) instead of constant with value=0``."""
    if c.after is MISSING:
        return f"{stage}: none instead of {fmt_value(c.before)}"
    new = [
        _setting(x.key, x.after, marked)
        for x in changes
        if x.key.startswith(stage + ".") and x.after is not MISSING and x is not c
    ]
    old = [f"{k}={fmt_value(v)}" for k, v in (old_cfg or {}).items() if k != "name"]
    after = f"{fmt_value(c.after)} with {', '.join(new)}" if new else fmt_value(c.after)
    if c.before is MISSING:
        return f"{stage}: {after}"
    before = (
        f"{fmt_value(c.before)} with {', '.join(old)}" if old and len(old) <= max_old else fmt_value(c.before)
    )
    return f"{stage}: {after} instead of {before}"


def format_changes(
    changes: list[Change],
    defaults: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
    max_old: int = 100,
) -> list[str]:
    """One phrase per changed setting; a swapped plugin is one phrase with its new settings.

    Parameters
    ----------
    changes : list of Change
        From :func:`recipe_changes`.
    defaults : iterable of str
        Dotted keys whose value is the plugin's default (marked ``(default)``).
    base : dict, optional
        The base recipe: the settings of a replaced plugin are taken from it.
    max_old : int
        A replaced plugin's settings are named when it had at most this many.
    """
    marked = set(defaults)
    swapped = _swapped_stages(changes)
    out = [
        _stage_phrase(stage, c, changes, marked, (base or {}).get(stage), max_old)
        for stage, c in swapped.items()
    ]
    for c in changes:
        if c.key.split(".", 1)[0] in swapped:
            continue
        if c.after is MISSING:
            out.append(f"{c.key} unset (was {fmt_value(c.before)})")
        else:
            out.append(f"{c.key}={fmt_value(c.after)}" + (" (default)" if c.key in marked else ""))
    return out
