"""What arrives from outside, parsed once at the edge into validated, typed objects.

Editions travel (a colleague's bundle, a part from another machine, runs coming back from a
cluster), so every metadata file in an archive (``bundle.json``, ``part.json``, ``parts.json``, a
run's ``manifest.json`` and ``history.json``, its cached metrics) is hostile until it has passed
one of the schemas below: types, required keys, value ranges, finite numbers, bounded strings
with no control characters. A file that fails is refused with :class:`SchemaError`, which names
the file and the field; the code past this edge trusts what it gets.

Two rules cover every name that becomes a path:
- :data:`NAME` is the one allow-list for profiles, groups, part files and folders (one path
  component: no separator, no ``..``, at most 128 characters); run ids follow :data:`RUN_ID`
  (``<model>-seed<n>-<10 hex>``, as ``runs.run_id`` makes them).
- :func:`inside` joins names to a root and checks the result still lies inside it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError,
                      field_validator, model_validator)


class SchemaError(ValueError):
    """A file from an archive or a manifest is malformed; the message names the file and the field."""


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.=+-]{0,127}")
RUN_ID = re.compile(r"[a-z]{2,16}-seed[0-9]{1,9}-[0-9a-f]{10}")
# A run folder's files: what a finished run leaves (the checkpoint only on runs coming back from a
# worker of ours) and evaluate.py's cache files (prefix, a 10-hex key of what made the number).
CACHE_FILE = re.compile(r"(metrics|nll|real|units|nn)-[0-9a-f]{10}\.json")
RUN_FILES = ("manifest.json", "history.json", "weights.pt", "checkpoint.pt")


def check_name(value: Any, field: str) -> str:
    """``value`` if it is a safe single path component (:data:`NAME`), else SchemaError naming ``field``."""
    if not isinstance(value, str) or not NAME.fullmatch(value) or ".." in value:
        raise SchemaError(f"{field} {str(value)[:80]!r} is not a plain name (letters, digits, ' _.=+-', "
                          "at most 128 characters, no separator or '..'); refused")
    return value


def check_run_id(value: Any, field: str = "run id") -> str:
    if not isinstance(value, str) or not RUN_ID.fullmatch(value):
        raise SchemaError(f"{field} {str(value)[:80]!r} is not a run id (<model>-seed<n>-<10 hex digits>); refused")
    return value


def inside(root: Path, *names: str) -> Path:
    """``root / names...``, refused (SchemaError) unless the resolved path lies inside ``root``."""
    path = Path(root).joinpath(*names)
    base = Path(root).resolve()
    if not path.resolve().is_relative_to(base):
        raise SchemaError(f"{'/'.join(names)!r} leads outside {root}; refused")
    return path


def _name(v: str) -> str:
    return check_name(v, "name")


def _run_id(v: str) -> str:
    return check_run_id(v)


def _profile(v: str) -> str:
    from .config import profile_names  # the profiles this checkout has: a bundle names one of them

    check_name(v, "profile")
    if v not in profile_names():
        raise ValueError(f"profile {v!r} is not one of this checkout's profiles {profile_names()}")
    return v


Name = Annotated[str, AfterValidator(_name)]
RunId = Annotated[str, AfterValidator(_run_id)]
Profile = Annotated[str, AfterValidator(_profile)]
Text = Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
CodeVersion = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{12}$")]
SourcePath = Annotated[str, StringConstraints(max_length=128, pattern=r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*\.py$")]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10**12)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False, frozen=True)


class Shipped(_Strict):
    """The weights a run's ``weights.pt`` holds: its models by name, and whether the snapshots go too."""
    models: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]{1,16}$")]] = Field(max_length=8)
    snapshots: bool


class PartRef(_Strict):
    """A part an assembled bundle is made of, pinned by its SHA-256."""
    file: Name
    sha256: Sha256
    runs: list[RunId] = Field(min_length=1, max_length=1000)


class PartsOfBundle(_Strict):
    folder: Name  # beside the bundle: editions/<folder>/
    files: dict[Name, PartRef] = Field(max_length=256)


class MachineRecord(_Strict):
    """The machine a run (a part, an edition) was trained on (``machine.this_machine``); "unknown"
    where it was not recorded. Several runs' records merged name every value ("a / b")."""
    cpu: Text
    isa: Text
    torch_isa: Text
    cores: Count | Text
    torch_threads: Count | Text
    gpu: Text
    os: Text
    python: Text
    torch: Text
    numpy: Text
    mkl: Text
    onednn: Text


class PartProvenance(_Strict):
    """One part of an assembled edition, as its ``parts.json`` entry recorded it."""
    file: Name
    sha256: Sha256
    bytes: Count
    exported: Text
    training_wall_seconds: Seconds
    device_name: Text
    machine: MachineRecord | None = None  # editions assembled before the machine was recorded: none
    trained_at_commits: list[Text] | None = Field(default=None, max_length=1000)
    last_run_finished: Text | None = None


class Provenance(_Strict):
    """Where, when and by which code an archive's numbers were made: what the archive states.
    Nothing here is checked against the machine that made it (only retraining can)."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)
    device: Text
    device_name: Text
    versions: dict[Text, Text] = Field(max_length=64)
    trained_at_commits: list[Text] = Field(max_length=1000)
    git_commit: Text
    code_version: CodeVersion
    metric_code_version: CodeVersion
    sources: dict[SourcePath, Sha256] = Field(max_length=512)
    profile_settings: Annotated[str, StringConstraints(max_length=65536)]
    created: Text
    exported_with: dict[Text, Text] = Field(max_length=64)
    first_run_finished: Text
    last_run_finished: Text
    training_seconds_sum: Seconds
    train_all: dict[Text, Any] | None = None
    parts: dict[Name, PartProvenance] | None = None  # an edition assembled from parts
    machine: MachineRecord | None = None  # the runs' machines (merged); archives made before: none

    @field_validator("train_all")
    @classmethod
    def _finite(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            check_finite(v, "train_all")
        return v


class BundleMeta(_Strict):
    """``bundle.json``: one edition of the report."""
    format: Literal[1]
    profile: Profile
    runs: dict[Name, list[RunId]] = Field(max_length=256)
    shipped: dict[RunId, Shipped] = Field(max_length=10000)
    provenance: Provenance
    parts: PartsOfBundle | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BundleMeta:
        ids = [rid for rs in self.runs.values() for rid in rs]
        if len(set(ids)) != len(ids):
            raise ValueError("runs: a run id is listed twice")
        if set(self.shipped) != set(ids):
            raise ValueError("shipped: must name exactly the runs listed in runs")
        if self.parts is not None:
            in_parts = [rid for e in self.parts.files.values() for rid in e.runs]
            if sorted(in_parts) != sorted(ids):
                raise ValueError("parts.files: the parts' runs must be exactly the bundle's runs, each once")
        return self

    @property
    def run_ids(self) -> list[str]:
        return [rid for rs in self.runs.values() for rid in rs]


class PartMeta(_Strict):
    """``part.json``: one group's runs, shipped on its own."""
    format: Literal[1]
    profile: Profile
    group: Name
    runs: list[RunId] = Field(min_length=1, max_length=1000)
    shipped: dict[RunId, Shipped]
    provenance: Provenance

    @model_validator(mode="after")
    def _consistent(self) -> PartMeta:
        if len(set(self.runs)) != len(self.runs) or set(self.shipped) != set(self.runs):
            raise ValueError("runs / shipped: each run once, and shipped names exactly the runs")
        return self


class PartEntry(_Strict):
    """One part in ``parts.json``."""
    file: Name
    sha256: Sha256
    bytes: Count
    runs: list[RunId] = Field(min_length=1, max_length=1000)
    exported: Text
    training_wall_seconds: Seconds
    device_name: Text
    machine: MachineRecord | None = None


class PartsRecord(_Strict):
    """``editions/<profile>/parts.json``: every part shipped, and the training code they share."""
    profile: Profile
    format: Literal[1]
    code_version: CodeVersion | None
    parts: dict[Name, PartEntry] = Field(max_length=256)


class Manifest(BaseModel):
    """A finished run's ``manifest.json`` (``runs._finish``)."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)
    run_id: RunId
    status: Literal["complete"]
    model: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,16}$")]
    profile: Name
    config: dict[Annotated[str, StringConstraints(pattern=r"^[a-z_0-9]{1,40}$")], Any] = Field(max_length=100)
    seed: Count
    code_version: CodeVersion
    git_commit: Text
    device: Text
    device_name: Text
    versions: dict[Text, Text] = Field(max_length=64)
    epochs: Count
    trained_with_seeds: list[Count] = Field(max_length=10000)
    trained_with_betas: list[list[Finite]] | None = Field(default=None, max_length=10000)
    machine: MachineRecord | None = None  # runs finished before the record existed: none
    wall_seconds: Seconds
    session_seconds: Seconds
    final: dict[Text, Any]
    finished: Text

    @field_validator("config", "final")
    @classmethod
    def _finite(cls, v: dict[str, Any]) -> dict[str, Any]:
        check_finite(v, "value")
        return v

    @model_validator(mode="after")
    def _seed(self) -> Manifest:
        if not self.run_id.startswith(f"{self.model}-seed{self.seed}-"):
            raise ValueError(f"run_id {self.run_id!r} is not a run of model {self.model!r}, seed {self.seed}")
        return self


class HistoryRow(BaseModel):
    """One epoch of a run's ``history.json``: its number, its seconds, and finite measurements
    (``steps``: every step's values of an objective run)."""
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, frozen=True)
    __pydantic_extra__: dict[Annotated[str, StringConstraints(pattern=r"^[a-z_0-9]{1,40}$")], Finite | None]
    epoch: Annotated[int, Field(ge=0, le=10**6)]
    seconds: Seconds
    steps: dict[Annotated[str, StringConstraints(pattern=r"^[a-z_0-9]{1,40}$")],
                list[Finite]] | None = Field(default=None, max_length=32)


# Cached metrics: every value a finite number (or a list of them), in its range where it has one.
_RANGES: tuple[tuple[str, float, float], ...] = (
    (r".*(accuracy|share)(_per_class)?", 0.0, 1.0),
    (r"fid|distance|.*_se|.*_sd|parzen_sigma|test_nll", 0.0, math.inf),
    (r"inception_score|test_inception_score", 1.0, math.inf),
    (r"test_elbo", -math.inf, 0.0),
    (r"n_samples|n|nll_images|nll_k|active_units|class_histogram", 0.0, math.inf),
)
_INTS = re.compile(r"n_samples|n|nll_images|nll_k|active_units|class_histogram")


class CachedMetrics(BaseModel):
    """A cache file of evaluate.py (``metrics-``, ``nll-``, ``real-``, ``units-``, ``nn-``)."""
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, frozen=True)
    __pydantic_extra__: dict[Annotated[str, StringConstraints(pattern=r"^[a-z_0-9]{1,40}$")],
                             Finite | Annotated[list[Finite], Field(max_length=100000)]]

    @model_validator(mode="after")
    def _ranges(self) -> CachedMetrics:
        for key, value in (self.__pydantic_extra__ or {}).items():
            values = value if isinstance(value, list) else [value]
            for pattern, lo, hi in _RANGES:
                if re.fullmatch(pattern, key):
                    if any(not lo <= v <= hi for v in values):
                        raise ValueError(f"{key}: {value if not isinstance(value, list) else 'a value'} "
                                         f"outside [{lo}, {hi}]")
                    if _INTS.fullmatch(key) and any(v != int(v) for v in values):
                        raise ValueError(f"{key}: not a whole number")
                    break
        return self


def check_finite(obj: Any, where: str, depth: int = 0) -> None:
    """Refuse NaN and infinities (and nesting deeper than 16) anywhere in a JSON value."""
    if depth > 16:
        raise ValueError(f"{where}: nested too deep")
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where}: {obj} is not a finite number")
    if isinstance(obj, dict):
        for k, v in obj.items():
            check_finite(v, f"{where}.{k}", depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            check_finite(v, where, depth + 1)


MAX_JSON_BYTES = 8 * 2**20  # the largest metadata file of the paper edition: a 300-epoch history, 109 KiB


def parse_json(data: bytes, model: Any, origin: str) -> Any:
    """``data`` (a file's bytes) parsed and validated by ``model`` (a class above, or a pydantic
    ``TypeAdapter``); SchemaError naming ``origin`` and the first fields that fail."""
    if len(data) > MAX_JSON_BYTES:
        raise SchemaError(f"{origin}: {len(data)} bytes, more than the {MAX_JSON_BYTES} a metadata file may have; refused")

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a finite number")

    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SchemaError(f"{origin}: not valid JSON ({type(e).__name__}: {str(e)[:200]}); refused") from None
    try:
        return model.validate_python(obj) if hasattr(model, "validate_python") else model.model_validate(obj)
    except ValidationError as e:
        errors = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: "
                           + err["msg"].removeprefix("Value error, ").removesuffix("; refused")[:160]
                           for err in e.errors()[:3])
        raise SchemaError(f"{origin}: {errors}; refused") from None
    except RecursionError:
        raise SchemaError(f"{origin}: nested too deep; refused") from None


def read_json(path: Path, model: Any, origin: str | None = None) -> Any:
    """The file at ``path`` through :func:`parse_json` (its size checked before it is read)."""
    path = Path(path)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise SchemaError(f"{origin or path}: larger than the {MAX_JSON_BYTES} bytes a metadata file may have; refused")
    return parse_json(path.read_bytes(), model, origin or str(path))


History = TypeAdapter(Annotated[list[HistoryRow], Field(max_length=100000)])
