"""Parameters are validated before any work: names, types, ranges, with the valid list in the message."""

import subprocess
import sys

import pytest

from mnistgen.config import ConfigError, make_config, profile_names


def test_profiles_exist_and_every_section_validates():
    assert {"smoke", "quick", "paper"} <= set(profile_names())
    for p in profile_names():
        for model in ("gan", "acgan", "vae", "iwae", "iwae_table", "classifier", "evaluation"):
            make_config(model, p)
    assert make_config("gan", "paper").epochs == 300
    assert make_config("gan", "paper").lr == 5e-4 and make_config("gan", "paper").k == 1


def test_overrides_win_and_none_means_the_profile():
    assert make_config("gan", "quick", epochs=7).epochs == 7
    assert make_config("gan", "quick", epochs=None).epochs == make_config("gan", "quick").epochs
    assert make_config("gan", lr=1).lr == 1.0  # an int where a float is wanted is fine


@pytest.mark.parametrize("kwargs, pattern", [
    ({"epoch": 3}, r"unknown parameter 'epoch'.*Valid parameters:.*epochs"),
    ({"epochs": "ten"}, r"'epochs' = 'ten' must be an integer"),
    ({"epochs": 2.5}, r"'epochs' = 2.5 must be an integer"),
    ({"epochs": 0}, r"'epochs' = 0 is out of range \[1, 10000\]"),
    ({"lr": -1.0}, r"'lr' = -1.0 is out of range"),
    ({"saturating": "yes"}, r"'saturating' = 'yes' must be true or false"),
    ({"device": "tpu"}, r"'device' = 'tpu' must be one of \['auto', 'cpu', 'cuda'\]"),
])
def test_bad_parameters_are_named_with_the_valid_choices(kwargs, pattern):
    with pytest.raises(ConfigError, match="(?s)" + pattern) as e:
        make_config("gan", "quick", **kwargs)
    assert "batch_size" in str(e.value)  # the list of valid parameters is part of the message


@pytest.mark.parametrize("model, name, value", [("gan", "lr", float("nan")), ("gan", "beta1", float("inf")),
                                                ("gan", "beta2", float("-inf")), ("iwae", "adam_eps", float("nan")),
                                                ("gan_sweep", "beta1s", [0.5, float("nan")])])
def test_nan_and_infinities_are_refused_with_the_valid_range(model, name, value):
    with pytest.raises(ConfigError, match=rf"(?s)'{name}' = .*(nan|inf) is not a finite number; valid range \[.*\]"):
        make_config(model, "quick", **{name: value})


def test_unknown_profile_and_model():
    with pytest.raises(ConfigError, match=r"unknown profile 'fast'; choose one of \['burda', 'paper', 'quick', 'smoke'"):
        make_config("gan", "fast")
    with pytest.raises(ConfigError, match="unknown model 'wgan'"):
        make_config("wgan")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mnistgen", *args], capture_output=True, text=True, timeout=120)


def test_cli_refuses_bad_parameters_before_any_work(tmp_path):
    r = _cli("render", "gan", "--profile", "smoke", "-p", "epochs", "-1", "--out", str(tmp_path))
    assert r.returncode != 0 and "'epochs' = -1 is out of range" in r.stderr and "Traceback" not in r.stderr
    r = _cli("render", "gan", "--profile", "smoke", "-p", "epoch", "5", "--out", str(tmp_path))
    assert r.returncode != 0 and "has no parameter(s) ['epoch']" in r.stderr and "epochs" in r.stderr
    assert not any(tmp_path.iterdir())  # nothing rendered
    r = _cli("train", "gan", "--profile", "smoke", "-p", "batch_size", "big")
    assert r.returncode != 0 and "'batch_size' = 'big' must be an integer" in r.stderr
    for value in (".nan",):  # YAML's NaN, as papermill reads it too (infinities: make_config's test above)
        r = _cli("train", "gan", "--profile", "smoke", "-p", "lr", value)
        assert r.returncode != 0 and "'lr' = " in r.stderr and "is not a finite number; valid range [1e-07, 1.0]" \
            in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = _cli("render", "gans")
    assert r.returncode != 0 and "unknown chapter 'gans'" in r.stderr


def test_a_missing_dependency_is_named_plainly(monkeypatch, tmp_path, capsys):
    from mnistgen import cli

    monkeypatch.setitem(sys.modules, "papermill", None)  # as if it were not installed
    with pytest.raises(SystemExit) as e:
        cli.main(["render", "gan", "--profile", "smoke", "--out", str(tmp_path)])
    assert "a dependency is missing" in str(e.value) and "papermill" in str(e.value)
    assert not any(tmp_path.iterdir())


def test_parallel_render_shares_runs_and_writes_every_chapter(tmp_path, monkeypatch, data_root, capfd):
    """``render all --jobs 2``: the GAN and AC-GAN chapters both need the GAN; it is trained once.
    The console says when each chapter starts and ends; the logs of the cluster, papermill and the
    kernels go to the log file it names."""
    from mnistgen import cli

    results = tmp_path / "results"
    monkeypatch.setenv("MNISTGEN_RESULTS", str(results))
    capfd.readouterr()
    cli.render_parallel(["acgan", "gan"], "smoke", tmp_path / "out", jobs=2, log_file=tmp_path / "render.log")
    console = capfd.readouterr()
    lines = [line for line in (console.out + console.err).splitlines() if line.strip()]
    assert lines[0].startswith("render: 2 chapter(s) of profile 'smoke'") and str(tmp_path / "render.log") in lines[0]
    for ch in ("acgan", "gan"):
        assert f"chapter {ch}: started" in lines and any(line.startswith(f"chapter {ch}: done after ") for line in lines)
    assert lines[-1].startswith("render: 2 chapter(s) in ")
    assert len(lines) == 6, lines  # nothing else: no start-up chatter, no kernel or papermill logs
    log = (tmp_path / "render.log").read_text()
    assert "render: gan (02_gan_experiments) with profile smoke" in log and "04_acgan.ipynb in" in log
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["02_gan_experiments.ipynb", "04_acgan.ipynb"]
    import collections
    import json

    runs = [p.name.split("-")[0] for p in (results / "smoke" / "runs").iterdir()]
    # one directory per run: 2 yardsticks; 2 AC-GAN seeds at each of 2 beta1 (the follow-up's); 2 x 2 sweep
    # settings x 2 GAN seeds and the follow-up's longer runs of one setting (2 seeds)
    assert sorted(set(runs)) == ["acgan", "classifier", "gan"]
    assert (runs.count("classifier"), runs.count("acgan"), runs.count("gan")) == (2, 4, 10)
    assert all((p / "manifest.json").is_file() for p in (results / "smoke" / "runs").iterdir())
    # and each was trained once, by one of the two chapters (a directory would not show a second training)
    log = [json.loads(line) for line in (results / "smoke" / "trained.jsonl").read_text().splitlines()]
    assert collections.Counter(r["run_id"] for r in log) == collections.Counter(
        p.name for p in (results / "smoke" / "runs").iterdir())


def test_parallel_render_reports_a_failed_chapter(tmp_path, monkeypatch):
    from mnistgen import cli

    (tmp_path / "results").write_text("a file where the results folder should be")  # training cannot save
    monkeypatch.setenv("MNISTGEN_RESULTS", str(tmp_path / "results"))
    # the chapter's own error, not just any failure: the run directory cannot be made under a file
    with pytest.raises(cli.UsageError, match=r"(?s)\['gan'\] failed.*NotADirectoryError.*results/smoke/runs"):
        cli.render_parallel(["gan"], "smoke", tmp_path / "out", jobs=2)
    assert not (tmp_path / "out" / "02_gan_experiments.ipynb").exists()


def test_runs_trained_elsewhere_and_copied_in_are_reused_not_retrained(tmp_path, data_root):
    """`train all` on one machine (another results folder), the folder copied: nothing retrains."""
    import os
    import shutil

    env = {**os.environ, "MNISTGEN_RESULTS": str(tmp_path / "gpu-box"), "MNISTGEN_DATA": str(data_root)}
    cut = _cli_env(env, "train", "all", "--profile", "smoke", "--time-limit", "1")  # over before it starts
    assert cut.returncode == 3 and "run the same command again to resume" in cut.stderr, cut.stderr[-2000:]
    first = _cli_env(env, "train", "all", "--profile", "smoke")
    assert first.returncode == 0, first.stderr[-2000:]
    trained = [line for line in first.stdout.splitlines() if ": trained " in line or "reused cached run" in line]
    # yardsticks, sweep x seeds, the objective chapter's four (two losses x two regimes) x seeds, AC-GAN,
    # VAE d=20 and d=2, the IWAE table's rows (IWAE k=1, 5; VAE k=5) x seeds, and the follow-up groups:
    # the pick's setting longer, the objective's four longer, the AC-GAN at beta1 0.9, x seeds
    assert len(trained) == 2 + 4 * 2 + 4 * 2 + 2 + 2 + 2 + 3 * 2 + (1 + 4 + 1) * 2
    shutil.copytree(tmp_path / "gpu-box", tmp_path / "laptop")
    env["MNISTGEN_RESULTS"] = str(tmp_path / "laptop")
    again = _cli_env(env, "train", "all", "--profile", "smoke")
    assert again.returncode == 0, again.stderr[-2000:]
    lines = [line for line in again.stdout.splitlines() if "cached run" in line or ": trained " in line]
    assert len(lines) == len(trained) and all("reused cached run" in line for line in lines)


def _cli_env(env, *args):
    return subprocess.run([sys.executable, "-m", "mnistgen", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_papermill_refuses_a_nan_parameter_in_the_notebooks_first_cells(tmp_path):
    """A notebook run by papermill itself (not through the CLI) stops in its first cell, naming the value."""
    import jupytext
    import papermill

    src = tmp_path / "gan.ipynb"
    jupytext.write(jupytext.read("notebooks/02_gan_experiments.py"), src)
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(src), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                                   parameters={"profile": "smoke", "lr": float("nan")}, cwd=str(tmp_path))
    assert e.value.ename == "ParameterError"
    assert "parameter 'lr' = nan is not a finite number; valid range [1e-07, 1.0]" in e.value.evalue
