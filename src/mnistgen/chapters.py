"""The report's chapters and their parameters, checked the same way wherever a chapter is run.

A chapter is a notebook (``notebooks/<stem>.py``, Jupytext, paired with ``<stem>.ipynb``) whose
cell tagged ``parameters`` names what a rerun may change. Each parameter is checked by one field of
a config section (``fields`` below), which gives its type, its range and, where the notebook's
default is None, the profile's value. Two callers, one set of rules and messages:

- ``mnistgen render`` / ``make run`` check the values before papermill starts (``validate``);
- the chapter's first cell checks them again after papermill has injected them (``checked``):
  papermill's own command line only *warns* of a name the notebook does not have and runs on with
  the defaults, and passes ``-p beta1s "[0.7]"`` as the string ``"[0.7]"``. Here a misspelt name
  stops the chapter before any work, with the nearest valid name, and a string is read as YAML
  (as ``-y`` would pass it) where the parameter is not a string.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import CONFIGS, ConfigError, make_config, profile_names

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"


class ParameterError(ValueError):
    """A chapter's parameters are not valid: the message names the problem and the valid parameters."""


@dataclass(frozen=True)
class Chapter:
    name: str  # as `mnistgen render NAME` and `make run NOTEBOOK=NAME` call it
    stem: str  # notebooks/<stem>.py
    # parameter -> (config section, field) that checks it and gives the profile's value
    fields: Mapping[str, tuple[str, str]]
    # the edition's groups of runs it reads, by the start of their names (``mnistgen edition status``)
    groups: tuple[str, ...]

    @property
    def notebook(self) -> Path:
        return NOTEBOOK_DIR / f"{self.stem}.py"

    def planned_runs(self, profile: str) -> list[str]:
        """The run ids this chapter reads under ``profile`` without overrides (for a progress bar)."""
        from .edition import run_ids

        return [rid for name, ids in run_ids(profile).items() if name.startswith(self.groups) for rid in ids]


CHAPTERS: dict[str, Chapter] = {c.name: c for c in (
    Chapter("gan_objective", "01_gan_objective", {
        "epochs": ("gan", "epochs"), "strong_k": ("gan", "k"), "seeds": ("evaluation", "seeds"),
        "device": ("gan", "device")}, ("classifier arch=lenet", "gan objective")),
    Chapter("gan", "02_gan_experiments", {
        "epochs": ("gan", "epochs"), "lr": ("gan", "lr"), "seeds": ("evaluation", "seeds"),
        "beta1s": ("gan_sweep", "beta1s"), "batch_sizes": ("gan_sweep", "batch_sizes"), "device": ("gan", "device")},
        ("classifier", "gan batch_size", "gan beta1")),
    Chapter("vae", "03_vae", {
        "epochs": ("vae", "epochs"), "batch_size": ("vae", "batch_size"), "lr": ("vae", "lr"),
        "z_dim": ("vae", "z_dim"), "seeds": ("evaluation", "seeds"), "device": ("vae", "device"),
        "nll_k": ("evaluation", "nll_k"), "nll_images": ("evaluation", "nll_images"),
        "iwae_epochs": ("iwae", "epochs")}, ("vae", "iwae")),
    Chapter("acgan", "04_acgan", {
        "epochs": ("acgan", "epochs"), "batch_size": ("acgan", "batch_size"), "lr": ("acgan", "lr"),
        "seeds": ("evaluation", "seeds"), "device": ("acgan", "device")},
        ("classifier", "acgan", "gan batch_size")),
    Chapter("evaluation", "05_evaluation", {
        "seeds": ("evaluation", "seeds"), "n_samples": ("evaluation", "n_samples"),
        "nll_k": ("evaluation", "nll_k"), "nll_images": ("evaluation", "nll_images"),
        "device": ("evaluation", "device")}, ("",)),
    # How this edition was made: reads the runs' manifests, trains nothing
    Chapter("edition", "06_edition", {}, ()),
)}
# Names IPython puts in a kernel's namespace before the first cell runs (not parameters).
_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def chapter(name: str) -> Chapter:
    if name not in CHAPTERS:
        raise ParameterError(f"unknown chapter {name!r}{_nearest(name, CHAPTERS)}; choose one of "
                             f"{sorted(CHAPTERS)} or 'all'")
    return CHAPTERS[name]


def notebook_defaults(ch: Chapter) -> dict[str, Any]:
    """Names and values assigned in the notebook's cell tagged ``parameters`` (``profile`` too)."""
    import jupytext

    nb = jupytext.read(ch.notebook)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                    for t in n.targets if isinstance(t, ast.Name)}
    raise ParameterError(f"{ch.notebook} has no cell tagged 'parameters'")


def _nearest(name: str, names: Any) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(ch: Chapter, profile: str) -> str:
    """One line per parameter of the chapter: its default (the notebook's, else the profile's), its range
    and its meaning."""
    defaults = notebook_defaults(ch)
    lines = [f"  profile: one of {profile_names()} (now {profile!r})"]
    for name, (section, field) in ch.fields.items():
        f = next(f for f in dataclasses.fields(CONFIGS[section]) if f.name == field)
        value = defaults.get(name)
        source = "this chapter's" if value is not None else f"profile {profile}'s"
        if value is None:
            value = getattr(make_config(section, profile), field)
            value = list(value) if isinstance(value, tuple) else value
        m = f.metadata
        rng = (f", one of {list(m['choices'])}" if m.get("choices") else
               f", in [{m['lo']}, {m['hi']}]" if m.get("lo") is not None and m.get("hi") is not None else
               f", >= {m['lo']}" if m.get("lo") is not None else "")
        lines.append(f"  {name} (default: {source} {value!r}{rng}): {m.get('help', '')}")
    return "\n".join(lines)


def _is_string_field(section: str, field: str) -> bool:
    tp = typing.get_type_hints(CONFIGS[section])[field]
    return tp is str or (typing.get_origin(tp) is not None and str in typing.get_args(tp))


def _as_yaml(value: Any, section: str, field: str) -> Any:
    """papermill's ``-p`` passes what is not a number, a bool or None as a string: read it as YAML
    (as ``-y`` would have) unless the parameter is itself a string."""
    if not isinstance(value, str) or _is_string_field(section, field):
        return value
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value  # the field's check names the type it needs


def validate(name: str, profile: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The chapter's parameter values, checked: unknown names (with the nearest valid name), types
    and ranges refused with one message naming the problem and listing the chapter's own parameters
    with the profile's values. Returns ``params`` with strings read as YAML where not strings."""
    ch = chapter(name)
    if not isinstance(profile, str) or profile not in profile_names():
        raise ParameterError(f"chapter {name!r}: unknown profile {profile!r}"
                             f"{_nearest(str(profile), profile_names())}; choose one of {profile_names()}")
    unknown = sorted(set(params) - set(ch.fields))
    if unknown:
        hints = "".join(f"\n  {u!r}{_nearest(u, ch.fields) or ' is not one of them'}" for u in unknown)
        raise ParameterError(f"chapter {name!r} has no parameter(s) {unknown}:{hints}\n"
                             f"Its parameters (profile {profile!r}):\n{describe(ch, profile)}")
    values = {k: _as_yaml(v, *ch.fields[k]) for k, v in params.items()}
    by_section: dict[str, dict[str, Any]] = {}
    for k, v in values.items():
        section, field = ch.fields[k]
        by_section.setdefault(section, {})[field] = v
    for section, fields in by_section.items():
        try:
            make_config(section, profile, **fields)
        except ConfigError as e:
            if e.key is None:
                raise
            field = e.key.split("[")[0]
            param = next(k for k, (s, f) in ch.fields.items() if s == section and f == field and k in values)
            raise ParameterError(f"chapter {name!r}: parameter {param!r}{e.key[len(field):]} {e.problem}.\n"
                                 f"Its parameters (profile {profile!r}):\n{describe(ch, profile)}") from None
    return values


def checked(name: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """In the chapter's first cell after papermill's injection, ``globals().update(checked(NAME, globals()))``:
    every parameter's value, checked by ``validate``. A value in the kernel's namespace that the
    parameters cell does not name is a parameter papermill was given by mistake: refused here."""
    ch = chapter(name)
    allowed = set(ch.fields) | {"profile"}
    injected = sorted(k for k, v in namespace.items() if not k.startswith("_") and k not in allowed
                      and k not in _KERNEL_NAMES and _is_literal(v))
    given = {k: namespace[k] for k in ch.fields if k in namespace}
    if injected:  # validate names them, with the nearest valid name
        validate(name, str(namespace.get("profile")), {**given, **{k: namespace[k] for k in injected}})
    defaults = notebook_defaults(ch)
    changed = {k: v for k, v in given.items() if v is not None and v != defaults.get(k)}
    values = validate(name, namespace.get("profile"), changed)  # type: ignore[arg-type]
    return {**given, **values, "profile": namespace.get("profile")}


def _is_literal(v: Any) -> bool:
    """What papermill can inject: numbers, strings, bools, None, lists and dicts of them."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_is_literal(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_literal(x) for k, x in v.items())
    return False
