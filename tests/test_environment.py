"""The environment is pinned whole: pyproject.toml's pins, the hashed lock that `make` and
environment.yml install from (requirements.lock, every transitive package with its SHA-256), and
the packages installed here all agree."""

import re
import tomllib
from importlib import metadata

import yaml
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from conftest import REPO

LOCK = REPO / "requirements.lock"
ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _pins(reqs):
    out = {}
    for r in reqs:
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", r)
        if m:
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def _project_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return _pins(list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra])


def _lock():
    """[(name, version, marker or None, [sha256 ...])] of requirements.lock, in its order."""
    entries = []
    for line in LOCK.read_text().splitlines():
        if m := ENTRY.match(line):
            entries.append((canonicalize_name(m.group(1)), m.group(2), m.group(3), []))
        elif (h := line.strip()).startswith("--hash="):
            assert entries, f"a hash before any package in {LOCK.name}: {line!r}"
            algo, _, digest = h.removeprefix("--hash=").rstrip(" \\").partition(":")
            assert algo == "sha256" and re.fullmatch(r"[0-9a-f]{64}", digest), f"not a SHA-256: {line!r}"
            entries[-1][3].append(digest)
        else:
            assert line.startswith("#") or line.strip().startswith("#") or not line.strip(), (
                f"{LOCK.name} holds a line that is neither a pin, a hash nor a comment: {line!r}")
    return entries


def test_the_lock_pins_every_package_with_hashes_and_holds_pyprojects_pins():
    entries = _lock()
    assert len(entries) > 100, "the lock holds the transitive packages, not only the top-level ones"
    assert all(hashes for *_, hashes in entries), [e[0] for e in entries if not e[3]]
    versions: dict[str, set[str]] = {}
    for name, version, _, _ in entries:
        versions.setdefault(name, set()).add(version)
    disagree = {name: (pin, sorted(versions.get(name, []))) for name, pin in _project_pins().items()
                if versions.get(name) != {pin}}
    assert not disagree, f"pyproject.toml's pins and {LOCK.name} disagree (run `make lock`): {disagree}"
    project = _project_pins()
    assert project["jupyter-book"].startswith("1.")
    assert (project["torch"], project["torchvision"]) == ("2.14.1", "0.29.1")


def test_make_and_environment_yml_install_from_the_lock_with_hashes_required():
    make = (REPO / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements.lock" in make
    assert re.search(r"pip install [^\n]*--no-deps[^\n]*-e \.", make), "the package itself brings no unlocked dependency"
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section == ["--require-hashes", "-r requirements.lock"]


def test_this_environment_is_the_lock():
    """Every locked package that applies to this interpreter is installed at the lock's version."""
    wrong = {}
    for name, version, marker, _ in _lock():
        if marker is not None and not Marker(marker).evaluate():
            continue
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong[name] = (version, "not installed")
            continue
        if have.split("+")[0] != version:  # torch's local tag (+cu130) names the build, not the release
            wrong[name] = (version, have)
    assert not wrong, f"installed packages that are not the lock's (lock, installed): {wrong}"
