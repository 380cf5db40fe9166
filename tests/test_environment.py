"""environment.yml and pyproject.toml pin the same versions."""

import re
import tomllib

import yaml

from conftest import REPO


def _pins(reqs):
    out = {}
    for r in reqs:
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", r)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    py = _pins(reqs)
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = _pins(pip_section)
    assert py == conda
    assert py["jupyter-book"].startswith("1.")
    assert (py["torch"], py["torchvision"]) == ("2.14.1", "0.29.1")
