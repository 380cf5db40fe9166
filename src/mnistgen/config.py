"""Typed configuration: one frozen dataclass per model, filled from a named profile plus overrides.

Every value a notebook or the CLI receives passes through :func:`make_config`, which refuses an
unknown name, a wrong type or an out-of-range value *before* any work starts, with a message that
names the parameter and lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"


class ConfigError(ValueError):
    """A parameter or profile is invalid; the message says which and what is allowed.

    For a bad parameter value, ``key`` is the parameter (``beta1s[0]`` for an element of a list) and
    ``problem`` what is wrong with it (``= -1 is out of range [1, 100000]``), so that a caller who
    names the parameter otherwise (a chapter's ``strong_k`` is the GAN's ``k``) can say it its way."""

    def __init__(self, message: str, key: str | None = None, problem: str | None = None):
        super().__init__(message)
        self.key, self.problem = key, problem


def _bad(cls: type, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{cls.model}: parameter {key!r} {problem}.\nValid parameters:\n{describe(cls)}",
                       key=key, problem=problem)


def _p(default: Any, help: str, lo: float | None = None, hi: float | None = None,
       choices: tuple[Any, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    """Settings every model's training shares. ``device`` is not part of a run's identity."""

    seed: int = _p(0, "seed for torch, numpy and Python", lo=0)
    epochs: int = _p(10, "passes over the training set", lo=1, hi=10_000)
    batch_size: int = _p(128, "images per optimiser step", lo=1, hi=60_000)
    lr: float = _p(5e-4, "Adam learning rate", lo=1e-7, hi=1.0)
    n_train: int | None = _p(None, "use only the first n of the images it trains on (None: all of them)", lo=1, hi=60_000)
    validation: int = _p(0, "the last this many MNIST training images are held out (never trained on) for "
                         "every choice made about the model: 0 trains on all 60,000", lo=0, hi=30_000)
    device: str = _p("auto", "auto (CUDA if present, else CPU), cpu or cuda", choices=("auto", "cpu", "cuda"))

    def identity(self) -> dict[str, Any]:
        """What a trained run depends on: every field but the device (it changes speed, not the model)."""
        d = dataclasses.asdict(self)
        d.pop("device")
        d["model"] = self.model
        return d

    model = "base"


@dataclass(frozen=True)
class GANConfig(TrainConfig):
    """The paper's GAN: MLPs 64-256-256-784 (G) and 784-256-256-1 (D), LeakyReLU(0.2), Adam 5e-4."""

    model = "gan"
    z_dim: int = _p(64, "dimension of the prior z ~ N(0, I)", lo=1, hi=4096)
    hidden: int = _p(256, "width of the two hidden layers of G and D", lo=1, hi=8192)
    k: int = _p(1, "discriminator steps per generator step (paper: 1)", lo=1, hi=100)
    beta1: float = _p(0.5, "Adam beta1 (0.5 as in Radford et al. 2016: damps oscillation)", lo=0.0, hi=0.9999)
    beta2: float = _p(0.999, "Adam beta2", lo=0.0, hi=0.99999)
    saturating: bool = _p(False, "generator minimises log(1 - D(G(z))) (eq. 1) instead of -log D(G(z))")
    quality_every: int = _p(0, "epochs between FID / IS / top-class checks of G's samples during training (0: none)",
                            lo=0, hi=10_000)
    quality_samples: int = _p(2000, "samples per check during training", lo=100, hi=100_000)
    validation: int = _p(10_000, "the last this many training images are the validation split (the sweep's "
                         "quality history and pick, the Parzen sigma): trained on the first 50,000, as "
                         "Goodfellow et al. (2014)", lo=0, hi=30_000)


@dataclass(frozen=True)
class ACGANConfig(GANConfig):
    """AC-GAN (Odena et al. 2017) on the paper's MLPs: D gets a 10-way class head, G a label embedding."""

    model = "acgan"
    n_classes: int = _p(10, "digit classes", lo=2, hi=10)


@dataclass(frozen=True)
class VAEConfig(TrainConfig):
    """VAE (Kingma & Welling 2013): MLP 784-400-(mu, logvar) encoder, d-400-784 Bernoulli decoder."""

    model = "vae"
    lr: float = _p(1e-3, "Adam learning rate", lo=1e-7, hi=1.0)
    z_dim: int = _p(20, "latent dimension d (2 for pictures of the latent space)", lo=1, hi=1024)
    hidden: int = _p(400, "width of the hidden layer of encoder and decoder", lo=1, hi=8192)


@dataclass(frozen=True)
class IWAEConfig(VAEConfig):
    """The one-stochastic-layer model of Burda et al. (2016): 784-200-200-(50, 50) encoder and
    50-200-200-784 Bernoulli decoder, tanh, trained on a k-sample bound with their protocol:
    Adam (0.9, 0.999, eps 1e-4), batch 20, learning rate 1e-3 * 10^(-i/7) for 3^i epochs,
    i = 0..7 (3,280 epochs). A shorter ``epochs`` compresses the eight stages proportionally
    (``train.burda_stage``)."""

    model = "iwae"
    z_dim: int = _p(50, "latent dimension", lo=1, hi=1024)
    hidden: int = _p(200, "width of each deterministic layer", lo=1, hi=8192)
    depth: int = _p(2, "deterministic layers on each side (encoder and decoder)", lo=1, hi=8)
    activation: str = _p("tanh", "nonlinearity of the deterministic layers", choices=("tanh", "relu"))
    objective: str = _p("iwae", "iwae: log of the mean of the k importance weights (Burda et al. eq. 8); "
                        "vae: the mean of their logs (k single-sample ELBOs)", choices=("iwae", "vae"))
    k: int = _p(1, "samples of z per image in the training bound (k = 1: both objectives are the VAE's)",
                lo=1, hi=5000)
    epochs: int = _p(3280, "passes over the training set; the eight learning-rate stages scale to it", lo=1, hi=10_000)
    batch_size: int = _p(20, "images per optimiser step", lo=1, hi=60_000)
    lr: float = _p(1e-3, "initial Adam learning rate (stage i: lr * 10^(-i/7))", lo=1e-7, hi=1.0)
    adam_eps: float = _p(1e-4, "Adam epsilon", lo=1e-12, hi=1.0)


@dataclass(frozen=True)
class ClassifierConfig(TrainConfig):
    """An evaluation yardstick, never a model being judged: a LeNet-like CNN or a small VGG-style
    CNN with batch norm (two architecture families, so a metric is not one network's opinion)."""

    model = "classifier"
    arch: str = _p("lenet", "lenet (LeCun et al. 1998) or vgg (3x3 convolutions with batch norm)",
                   choices=("lenet", "vgg"))
    lr: float = _p(1e-3, "Adam learning rate (halved after every third of the epochs)", lo=1e-7, hi=1.0)
    epochs: int = _p(3, "passes over the training set", lo=1, hi=1000)
    shift: int = _p(2, "augmentation: random shifts of up to this many pixels (0: none)", lo=0, hi=8)
    validation: int = _p(10_000, "held-out training images: a yardstick trains on the GANs' training split, so "
                         "the validation images it judges them on are new to it too", lo=0, hi=30_000)


@dataclass(frozen=True)
class SweepConfig:
    """The GAN's settings the paper leaves open, measured: every beta1 x batch size, the profile's seeds.

    The rule that picks the setting the report uses is fixed before any result is seen: the
    lowest mean FID (first yardstick) at the end of training, over the seeds.
    """

    model = "gan_sweep"
    beta1s: tuple[float, ...] = _p((0.5, 0.9), "Adam beta1 values", lo=0.0, hi=0.9999)
    batch_sizes: tuple[int, ...] = _p((64, 128), "batch sizes", lo=1, hi=60_000)


@dataclass(frozen=True)
class FollowupConfig:
    """Experiments that answer what the sweep, the objective chapter and the AC-GAN chapter leave
    open, each a group of runs of its own (configuration only: the training code is the same).
    None leaves an experiment out of the profile."""

    model = "followup"
    long_epochs: int | None = _p(None, "the sweep's setting (long_beta1, long_batch_size) trained this many epochs: "
                                 "with twice the sweep's epochs at batch 128 it reaches the updates batch 64 "
                                 "made in the sweep", lo=1, hi=10_000)
    long_beta1: float = _p(0.9, "Adam beta1 of the long runs", lo=0.0, hi=0.9999)
    long_batch_size: int = _p(128, "batch size of the long runs", lo=1, hi=60_000)
    objective_epochs: int | None = _p(None, "the objective chapter's four settings trained this many epochs with "
                                      "quality checks, so that sample quality can rank them", lo=1, hi=10_000)
    acgan_beta1: float | None = _p(None, "the AC-GAN also trained with this Adam beta1, beside the GAN of the "
                                   "same beta1 and batch size", lo=0.0, hi=0.9999)


@dataclass(frozen=True)
class IWAETableConfig:
    """The rows of the VAE chapter's comparison with Burda et al. (2016), Table 1: one
    configuration per (objective, k), each trained with these seeds as one batch and scored with
    the evaluation's importance-sampled NLL (k = ``evaluation.nll_k``) on ``nll_images`` images."""

    model = "iwae_table"
    iwae_ks: tuple[int, ...] = _p((1, 5, 50), "k of the IWAE rows (k = 1 is the VAE)", lo=1, hi=5000)
    vae_ks: tuple[int, ...] = _p((5, 50), "k of the rows trained on the average of k ELBOs", lo=2, hi=5000)
    seeds: tuple[int, ...] = _p((0, 1, 2), "training seeds of every row", lo=0)
    nll_images: int = _p(10_000, "test images in each row's NLL estimate", lo=1, hi=10_000)


@dataclass(frozen=True)
class EvalConfig:
    """How the models are judged (the evaluation chapter)."""

    model = "evaluation"
    seeds: tuple[int, ...] = _p((0, 1, 2), "training seeds per model (trained as one batch); every number is "
                                "their mean ± standard deviation", lo=0)
    yardsticks: tuple[str, ...] = _p(("lenet", "vgg"), "classifier architectures that judge samples; the "
                                     "first is the main one", choices=("lenet", "vgg"))
    n_samples: int = _p(10_000, "generated images per model for FID / IS / Parzen", lo=100, hi=100_000)
    nll_k: int = _p(5000, "importance samples per test image for the VAE's NLL", lo=1, hi=100_000)
    nll_images: int = _p(10_000, "test images in the NLL estimate", lo=1, hi=10_000)
    parzen_n_valid: int = _p(10_000, "validation images (last of train) used to choose the Parzen sigma", lo=10, hi=10_000)
    parzen_n_test: int = _p(10_000, "test images scored by the Parzen window", lo=10, hi=10_000)
    device: str = _p("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))


CONFIGS: dict[str, type] = {"gan": GANConfig, "acgan": ACGANConfig, "vae": VAEConfig, "iwae": IWAEConfig,
                            "classifier": ClassifierConfig, "evaluation": EvalConfig, "gan_sweep": SweepConfig,
                            "iwae_table": IWAETableConfig, "followup": FollowupConfig}


def describe(cls: type) -> str:
    """One line per parameter: name, type, default, range, meaning."""
    lines = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        rng = ""
        if m.get("choices"):
            rng = f" one of {list(m['choices'])}"
        elif m.get("lo") is not None and m.get("hi") is not None:
            rng = f" in [{m['lo']}, {m['hi']}]"
        elif m.get("lo") is not None:
            rng = f" >= {m['lo']}"
        lines.append(f"  {f.name} ({_type_name(f.type)}, default {f.default!r}{rng}): {m.get('help', '')}")
    return "\n".join(lines)


def _type_name(tp: Any) -> str:
    return tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))


def _check(cls: type, name: str, value: Any, tp: Any) -> Any:
    """Return ``value`` coerced to ``tp`` (int -> float, list -> tuple) or raise ConfigError."""
    def bad(why: str) -> ConfigError:
        return _bad(cls, name, f"= {value!r} {why}")

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (tp,) = [a for a in args if a is not type(None)]
        origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise bad("must be a non-empty list")
        (elem,) = typing.get_args(tp)[:1]
        return tuple(_check(cls, f"{name}[{i}]", v, elem) for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("must be a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("must be a string")
        return value
    raise TypeError(f"unsupported field type {tp}")


def make_config(model: str, profile: str | None = None, **overrides: Any) -> Any:
    """Build a validated config: defaults < ``profiles/<profile>.yml`` section < overrides.

    Overrides whose value is None are ignored, so a notebook's ``epochs = None`` means "the profile's".
    """
    if model not in CONFIGS:
        raise ConfigError(f"unknown model {model!r}; choose one of {sorted(CONFIGS)}")
    cls = CONFIGS[model]
    values: dict[str, Any] = {}
    if profile is not None:
        section = dict(load_profile(profile).get(model, {}) or {})
        if model == "classifier":  # per-architecture settings: classifier: {epochs: 4, vgg: {epochs: 3}}
            arch = overrides.get("arch") or section.get("arch") or "lenet"
            per_arch = {a: section.pop(a) for a in ("lenet", "vgg") if isinstance(section.get(a), dict)}
            section.update(per_arch.get(arch, {}))
        values.update(section)
    values.update({k: v for k, v in overrides.items() if v is not None})
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise ConfigError(f"{model}: unknown parameter {key!r}.\nValid parameters:\n{describe(cls)}")
    checked = {}
    for key, value in values.items():
        v = _check(cls, key, value, hints[key])
        m = names[key].metadata
        if m.get("choices") and any(x not in m["choices"] for x in (v if isinstance(v, tuple) else (v,))):
            raise _bad(cls, key, f"= {v!r} must be one of {list(m['choices'])}")
        for x in (v if isinstance(v, tuple) else (v,)):
            if isinstance(x, float) and not math.isfinite(x):  # NaN fails no comparison: ask first
                raise _bad(cls, key, f"= {x!r} is not a finite number; valid range [{m.get('lo')}, {m.get('hi')}]")
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                if (m.get("lo") is not None and x < m["lo"]) or (m.get("hi") is not None and x > m["hi"]):
                    raise _bad(cls, key, f"= {x!r} is out of range [{m.get('lo')}, {m.get('hi')}]")
        if isinstance(v, tuple) and len(set(v)) != len(v):
            raise _bad(cls, key, f"= {list(v)} repeats a value")
        checked[key] = v
    return cls(**checked)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yml"))


def load_profile(profile: str) -> dict[str, dict[str, Any]]:
    path = PROFILES_DIR / f"{profile}.yml"
    if not path.is_file():
        raise ConfigError(f"unknown profile {profile!r}; choose one of {profile_names()} (files in {PROFILES_DIR})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or set(data) - set(CONFIGS):
        raise ConfigError(f"{path}: top-level keys must be among {sorted(CONFIGS)}, got {sorted(data)}")
    return data
