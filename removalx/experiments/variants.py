"""The variants of an ``ablate`` run: ``--vary`` and ``--variants FILE`` (docs/experiments.md).

Three ``--vary`` forms (one ``ablate`` varies one key or one stage):

* ``KEY=V1,V2,...`` -- a dotted key and YAML values, e.g. ``removal.name=constant,blur``
  (labels ``RECIPE[KEY=V]``, as before);
* ``STAGE=MAPPING,MAPPING,...`` -- whole stage configs written as YAML flow or JSON mappings,
  e.g. ``removal={name: blur, sigma: 5},{name: constant}``; a bare plugin name stands for
  ``{name: PLUGIN}``. A mapping with ``name`` replaces the recipe's stage by that plugin's
  defaults plus the mapping's other fields; one without ``name`` changes the given fields of
  the recipe's own stage (the rule of ``--set``, docs/recipes.md);
* ``STAGE=NAME1:MAPPING,NAME2:MAPPING`` -- the same with display names, e.g.
  ``removal=black:{name: constant},blur5:{name: blur, sigma: 5}``.

Commas inside braces, brackets or quotes do not split. ``--variants FILE`` is a YAML list of
``{name: DISPLAY, STAGE: {...}, KEY: value}`` entries (``name`` optional). A display name
becomes the method's label (what the store, the printed table, the report and its charts
show); without one the label is ``RECIPE[...]`` built from the variant's values. Every
variant's recipe is validated before any work starts (:func:`variant_triples`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from removalx.errors import ConfigError, RemovalxError, short_repr, truncate

__all__ = [
    "MAX_LABEL_CHARS",
    "MAX_NAME_CHARS",
    "MAX_VARIANTS",
    "MAX_VARY_CHARS",
    "Variant",
    "load_variants",
    "parse_vary",
    "variant_triples",
]

#: Most variants of one ``ablate`` run.
MAX_VARIANTS = 32
#: Longest ``--vary`` text.
MAX_VARY_CHARS = 4000
#: Longest display name.
MAX_NAME_CHARS = 40
#: Longest generated method label (longer ones are cut).
MAX_LABEL_CHARS = 80
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*")
_NAMED_MAPPING = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.+\-]*)\s*:\s*(\{.*\})", re.DOTALL)
_NAMED_PLUGIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.+\-]*):([A-Za-z0-9_\-]+)")
_PAIRS = {"{": "}", "[": "]"}
_VARY_FIX = (
    "Write --vary KEY=V1,V2 (e.g. removal.name=constant,blur), --vary 'STAGE={...},{...}' "
    "(e.g. removal={name: blur, sigma: 5},{name: constant}) or --vary "
    "'STAGE=NAME:{...},NAME:{...}' (e.g. removal=black:{name: constant},blur5:{name: blur, sigma: 5})."
)


@dataclass(frozen=True)
class Variant:
    """One variant: its method label, its recipe overrides, and its display name if given."""

    label: str
    overrides: dict[str, Any]
    display_name: str | None = None


def _stages() -> tuple[str, ...]:
    from removalx.core.recipe import RECIPE_STAGES

    return tuple(RECIPE_STAGES)


def split_top(text: str) -> list[str]:
    """``text`` split at the commas outside braces, brackets and quotes (items stripped).

    Raises
    ------
    ConfigError
        Unbalanced brackets or an unclosed quote.
    """
    parts: list[str] = []
    stack: list[str] = []
    quote = ""
    start = 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in _PAIRS:
            stack.append(ch)
        elif ch in "}]":
            if not stack or _PAIRS[stack.pop()] != ch:
                raise ConfigError(f"--vary: unbalanced {ch!r} at character {i + 1}.", _VARY_FIX)
        elif ch == "," and not stack:
            parts.append(text[start:i].strip())
            start = i + 1
    if quote or stack:
        missing = quote or stack[-1]
        raise ConfigError(f"--vary: a {missing!r} is never closed.", _VARY_FIX)
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _yaml(text: str, what: str) -> Any:
    """``text`` parsed as bounded YAML (recipe limits); a syntax error is a :class:`ConfigError`."""
    import yaml

    from removalx.core.recipe import _safe_load

    try:
        return _safe_load(text, what)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(
            f"{what}: {short_repr(text)} is not valid YAML ({truncate(str(problem), 80)}).", _VARY_FIX
        ) from None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name):
        raise ConfigError(
            f"Variant name {short_repr(name, 60)}: expected 1 to {MAX_NAME_CHARS} letters, digits or '_.+-', "
            "starting with a letter or digit.",
            "Name variants e.g. black, blur5, mean_color.",
        )
    if name == "random":
        raise ConfigError("Variant name 'random' is the random-map baseline's label.", "Choose another name.")
    return name


def _stage_overrides(stage: str, value: Any, where: str) -> dict[str, Any]:
    """A stage's config (mapping or plugin name) as dotted overrides ``{STAGE.FIELD: value}``."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(
            f"{where}: the {stage} config must be a non-empty mapping or a plugin name, got {short_repr(value)}.",
            _VARY_FIX,
        )
    out: dict[str, Any] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: {stage} field {short_repr(key)} is not a field name.", _VARY_FIX)
        if ":" in key and val is None:
            raise ConfigError(
                f"{where}: {stage} field {short_repr(key)} has no value.",
                "Put a space after each ':' in a YAML mapping, e.g. {name: blur, sigma: 5}.",
            )
        out[f"{stage}.{key}"] = val
    return out


def _compact(stage: str, overrides: Mapping[str, Any]) -> str:
    """``STAGE=PLUGIN,FIELD=V`` of a stage variant (its default label's inside)."""
    fields = {k.split(".", 1)[1]: v for k, v in overrides.items()}
    head = [str(fields.pop("name"))] if "name" in fields else []
    body = [f"{k}={_scalar(v)}" for k, v in fields.items()]
    return f"{stage}={','.join(head + body)}"


def _scalar(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)


def _stage_item(stage: str, item: str) -> tuple[str | None, dict[str, Any]]:
    """One ``[NAME:]MAPPING`` or ``[NAME:]PLUGIN`` item of ``--vary STAGE=...``."""
    named = _NAMED_MAPPING.fullmatch(item) or _NAMED_PLUGIN.fullmatch(item)
    name, body = (named.group(1), named.group(2)) if named else (None, item)
    where = f"--vary {stage} variant {short_repr(item, 60)}"
    if body.startswith("{"):
        value = _yaml(body, where)
    elif _NAME.fullmatch(body):
        value = body
    else:
        raise ConfigError(f"{where}: expected a mapping {{...}}, a plugin name or NAME:{{...}}.", _VARY_FIX)
    return (None if name is None else _check_name(name)), _stage_overrides(stage, value, where)


def parse_vary(vary: str, base: str) -> list[Variant]:
    """The variants of ``--vary`` (see the module docstring) of recipe label ``base``.

    Raises
    ------
    ConfigError
        Bad syntax (the message shows the three forms), fewer than two or more than
        :data:`MAX_VARIANTS` variants, a bad or repeated display name.
    """
    if not isinstance(vary, str) or len(vary) > MAX_VARY_CHARS:
        raise ConfigError(f"--vary is longer than {MAX_VARY_CHARS} characters.", "Use --variants FILE.")
    key, eq, values = vary.partition("=")
    key = key.strip()
    if not eq or not key or any(c in key for c in "{}[]:, "):
        raise ConfigError(
            f"--vary {short_repr(vary, 120)}: expected KEY=V1,V2 or STAGE=MAPPING,MAPPING.", _VARY_FIX
        )
    items = split_top(values)
    _check_count(len(items), f"--vary {short_repr(vary, 120)}")
    out: list[Variant] = []
    if key in _stages():
        for item in items:
            name, over = _stage_item(key, item)
            out.append(Variant(name or _bounded(f"{base}[{_compact(key, over)}]"), over, name))
    else:
        for item in items:
            value = _yaml(item, f"--vary {short_repr(key, 60)} value {short_repr(item, 60)}")
            out.append(Variant(_bounded(f"{base}[{key}={item}]"), {key: value}))
    return _check_labels(out)


def _bounded(label: str) -> str:
    """``label`` with its whitespace collapsed; a longer one is cut and tagged with its hash (stays unique)."""
    import hashlib

    label = " ".join(label.split())
    if len(label) <= MAX_LABEL_CHARS:
        return label
    tag = hashlib.sha256(label.encode("utf-8")).hexdigest()[:8]
    return f"{truncate(label, MAX_LABEL_CHARS - 9)}#{tag}"


def _check_count(n: int, where: str) -> None:
    if n < 2 or n > MAX_VARIANTS:
        raise ConfigError(
            f"{where}: {n} variant{'s' if n != 1 else ''}; ablate compares 2 to {MAX_VARIANTS}.",
            _VARY_FIX if n < 2 else "Split the variants over several ablate runs on the same --db.",
        )


def _check_labels(variants: list[Variant]) -> list[Variant]:
    seen: dict[str, int] = {}
    for i, v in enumerate(variants):
        if v.label in seen:
            raise ConfigError(
                f"Variants {seen[v.label] + 1} and {i + 1} have the same label {short_repr(v.label)}.",
                "Give each variant its own values, or a distinct display name (NAME:{...}).",
            )
        seen[v.label] = i
    return variants


def load_variants(source: str | Path | Sequence[Mapping[str, Any]], base: str) -> list[Variant]:
    """The variants of a ``--variants`` YAML file, or of the same list given in Python.

    Each entry is a mapping: ``name`` (optional display name), stage keys with a config
    mapping or a plugin name (``removal: {name: blur, sigma: 5}``), and other recipe keys,
    dotted or not (``sample_selection.n_samples: 100``, ``seed: 3``).

    Raises
    ------
    ConfigError
        A file that is not a YAML list of mappings, an empty entry, a bad display name, fewer
        than two or more than :data:`MAX_VARIANTS` entries, two entries with the same label.
    """
    where = "--variants"
    if isinstance(source, (str, Path)):
        from removalx.core.recipe import _read_yaml

        where = f"--variants {truncate(str(source), 120)}"
        try:
            data = _read_yaml(Path(source), f"file {truncate(str(source), 120)}")
        except RemovalxError as exc:
            raise ConfigError(
                f"{where}: {exc.what}", "Give a YAML list of {name: ..., STAGE: {...}} entries."
            ) from None
    else:
        data = source
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise ConfigError(
            f"{where}: expected a list of variants, got {short_repr(data)}.",
            "Write e.g.\n- name: black\n  removal: {name: constant}\n- name: blur5\n  removal: {name: blur, sigma: 5}",
        )
    _check_count(len(data), where)
    return _check_labels([_entry(entry, i, base, where) for i, entry in enumerate(data)])


def _entry(entry: Any, i: int, base: str, where: str) -> Variant:
    """Variant ``i`` of a variants list."""
    at = f"{where}, variant {i + 1}"
    if not isinstance(entry, Mapping) or not entry:
        raise ConfigError(
            f"{at}: expected a mapping such as {{name: blur5, removal: {{...}}}}, got {short_repr(entry)}."
        )
    name = entry.get("name")
    name = None if name is None else _check_name(name)
    over: dict[str, Any] = {}
    parts: list[str] = []
    for key, value in entry.items():
        if key == "name":
            continue
        if not isinstance(key, str) or not key:
            raise ConfigError(
                f"{at}: key {short_repr(key)} is not a recipe key.", "Use stage names or dotted keys."
            )
        if key in _stages():
            stage = _stage_overrides(key, value, at)
            over.update(stage)
            parts.append(_compact(key, stage))
        else:
            over[key] = value
            parts.append(f"{key}={_scalar(value)}")
    if not over:
        raise ConfigError(f"{at}: the variant changes nothing.", "Give a stage config or a recipe key.")
    return Variant(name or _bounded(f"{base}[{';'.join(parts)}]"), over, name)


def variant_triples(recipe: str, variants: Sequence[Variant]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, recipe, overrides)`` of each variant, every variant's recipe validated first.

    Raises
    ------
    ConfigError
        A variant whose recipe is invalid (unknown field, wrong value, unknown plugin): the
        message names the variant and the recipe's error.
    """
    from removalx.core.recipe import load_recipe

    for v in variants:
        try:
            load_recipe(recipe, overrides=dict(v.overrides))
        except RemovalxError as exc:
            raise ConfigError(f"Variant {short_repr(v.label)}: {exc.what}", exc.fix) from None
    return [(v.label, recipe, dict(v.overrides)) for v in variants]
