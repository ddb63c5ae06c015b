"""Deep ensembles from the search population: ``ensemble:`` in a space file and
``supervisor ensemble RUN``, on a TensorFlow-free softmax classifier (tests.toy_classifier)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from optuna.trial import TrialState

import supervisor.rundir as rundir
from supervisor.benchmarks import Direction
from supervisor.config import space
from supervisor.ensemble import uq
from supervisor.ensemble.aggregate import Member, evaluate
from supervisor.ensemble.members import ranked
from supervisor.errors import SpaceError
from supervisor.study import attrs
from supervisor.study.storage import load_study
from tests.toy_classifier import ToyClassifier

TOY = "tests.toy_classifier:ToyClassifier"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def write_space(tmp_path: Path, ensemble: str = "", trials: int = 6, extra: str = "") -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'study: toy\nbenchmark: {{name: "{TOY}"}}\n'
        "objectives: [val_nll]\n"
        "params:\n"
        "  lr: {type: float, low: 0.01, high: 1.0, log: true}\n"
        "  l2: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}\n"
        f"{extra}"
        f"budget: {{trials: {trials}, epochs: 2}}\n"
        "sampler: random\nseed: 5\n"
        f"{ensemble}"
    )
    return path


def search(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return cli(
        *("search", "toy.yaml", "--workers", "2", "--threads", "1", "--plain"),
        *("--dashboard", ":0", *flags),
        cwd=tmp_path,
    )


def summary(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "runs/toy/ensemble/ensemble.json").read_text())


# -- the space file ------------------------------------------------------------------------


def test_the_ensemble_section_is_validated(tmp_path: Path) -> None:
    exp = space.load(write_space(tmp_path, "ensemble: {select: seeds, size: 4}\n"))
    assert exp.ensemble is not None
    assert (exp.ensemble.select, exp.ensemble.size, exp.ensemble.pool) == ("seeds", 4, 20)
    assert exp.to_dict()["ensemble"] == {"select": "seeds", "size": 4, "pool": 20}
    from supervisor.commands.search import SearchOptions
    from supervisor.commands.summary import describe_experiment

    shown = describe_experiment(exp, SearchOptions(space_file="toy.yaml", runs_root=tmp_path))
    assert "then        an ensemble: select seeds, size 4" in shown.splitlines()
    finalists = space.load(write_space(tmp_path, "ensemble: {select: seeds, candidates: 3}\n"))
    assert finalists.to_dict()["ensemble"]["candidates"] == 3
    shown = describe_experiment(
        finalists, SearchOptions(space_file="toy.yaml", runs_root=tmp_path)
    )
    assert "select seeds, size 5, the best of 3 configurations" in shown
    assert space.load(write_space(tmp_path, "ensemble: true\n")).ensemble is not None
    assert space.load(write_space(tmp_path)).ensemble is None
    bad = {
        "ensemble: {select: greedyy}\n": "ensemble.select: expected one of auto, topk, greedy,"
        " seeds, got 'greedyy' (did you mean \"greedy\"?)",
        "ensemble: {size: 0}\n": "ensemble.size: expected an integer between 1 and 1000, got 0",
        "ensemble: {members: 3}\n": "ensemble.members: unknown key",
        "ensemble: {select: topk, candidates: 3}\n": "ensemble.candidates: applies to select:"
        " seeds only",
        "ensemble: {select: seeds, candidates: 0}\n": "ensemble.candidates: expected an integer",
    }
    for text, message in bad.items():
        with pytest.raises(SpaceError) as err:
            space.load(write_space(tmp_path, text))
        assert message in str(err.value)
    toy = tmp_path / "plain.yaml"  # a benchmark without ensemble_kind
    toy.write_text(
        'benchmark: {name: "tests.toy_benchmark:ToyBenchmark"}\nparams: {x: [1, 2]}\n'
        "budget: {trials: 1, epochs: 1}\nensemble: true\n"
    )
    with pytest.raises(SpaceError, match="does not support ensembles"):
        space.load(toy)


# -- search, then ensemble -------------------------------------------------------------------


def test_a_search_with_an_ensemble_section_reuses_its_trials(tmp_path: Path) -> None:
    # Failed trials are data: never candidates, never in the way.
    write_space(
        tmp_path, "ensemble: {select: greedy, size: 2, pool: 3}\n", trials=8,
        extra="  mode: [ok, raise]\n",
    )  # fmt: skip
    result = search(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"Ensemble of \d \(greedy\): test nll [\d.]+ vs best single member", result.stdout
    )

    data = summary(tmp_path)
    assert data["trained"] == 0  # every member was saved by the search itself
    assert data["select"] == "greedy" and 1 <= len(data["members"]) <= 2
    assert {m["study"] for m in data["members"]} == {"toy"}
    study = load_study(f"journal:{tmp_path}/runs/toy/journal.log", "toy")
    assert study.get_trials(states=(TrialState.FAIL,))
    # The predictions of the trials the ensemble can use stay: the best 3 (its pool).
    best = ranked(study, maximize=False)
    saved = {int(p.parent.name) for p in (tmp_path / "runs/toy/trials").glob("*/outputs.npz")}
    assert len(best) > 3 and saved == {t.number for t in best[:3]}
    assert {m["trial"] for m in data["members"]} <= {
        t.number for t in study.get_trials(states=(TrialState.COMPLETE,))
    }
    # Averaging probabilities never scores worse than the members' mean NLL (Jensen).
    member_nll = [m["test"]["nll"] for m in data["members"]]
    assert 0 < data["ensemble"]["nll"] <= np.mean(member_nll) + 1e-9
    assert data["best_member"]["nll"] in member_nll
    scaled = data["temperature_scaled"]  # fitted on validation, judged on test
    assert set(scaled) == {"ensemble", "best member"} and scaled["ensemble"]["T"] > 0
    assert scaled["ensemble"]["accuracy"] == data["ensemble"]["accuracy"]
    report = (tmp_path / "reports/toy-uq.html").read_text()
    assert "Reliability diagrams" in report and "Metrics against ensemble size" in report
    assert report.count('class="figure"') >= 4
    # The campaign report links to the UQ report next to it.
    assert 'href="toy-uq.html"' in (tmp_path / "reports/toy.html").read_text()


def test_ensemble_command_trains_missing_members_once(tmp_path: Path) -> None:
    write_space(tmp_path, trials=4)  # no ensemble section: the search keeps no outputs
    assert search(tmp_path, "--epochs", "3").returncode == 0  # the file says 2
    # Edited since: the ensemble rebuilds the search's space from the study, not the file.
    space_file = tmp_path / "toy.yaml"
    space_file.write_text(space_file.read_text().replace("seed: 5", "seed: 99"))
    first = cli("ensemble", "toy", "--select", "topk", "--size", "2", "--workers", "2",
                "--plain", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Dask dashboard: http://127.0.0.1:" in first.stdout  # where its training shows
    data = summary(tmp_path)
    assert data["trained"] == 2 and data["reused"] == 0
    storage = f"journal:{tmp_path}/runs/toy/journal.log"
    members = load_study(storage, "toy.ensemble").get_trials(states=(TrialState.COMPLETE,))
    search_study = load_study(storage, "toy")
    best = sorted(search_study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)
    # Each member trains its search trial's configuration with that trial's seed.
    assert sorted(t.user_attrs[attrs.MEMBER_OF] for t in members) == sorted(
        t.number for t in best[:2]
    )
    for m in members:
        source = search_study.trials[m.user_attrs[attrs.MEMBER_OF]]
        assert m.params == source.params
        assert m.user_attrs[attrs.SEED] == 5 + source.number
        assert m.value == pytest.approx(source.value)  # same data, params, seed and epochs
        assert len(m.user_attrs["history"]) == 3

    # k seeds of the best configuration: the two trained above are reused, two more train.
    again = cli("ensemble", "toy", "--select", "seeds", "--size", "3", "--plain", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    data = summary(tmp_path)
    assert (data["trained"], len(data["members"])) == (3, 3)
    seeds = load_study(storage, "toy.ensemble").get_trials(states=(TrialState.COMPLETE,))
    assert len(seeds) == 4  # 2 (topk) + 2 new seeds; the best's own seed was not retrained
    assert {t.user_attrs[attrs.MEMBER_OF] for t in seeds[2:]} == {best[0].number}

    # Re-evaluated: the 2 best configurations, 2 seeds each (the two topk members and the
    # best's second seed are reused: one more trains); the best mean is the ensemble.
    finals = cli("ensemble", "toy", "--select", "seeds", "--size", "2", "--candidates", "2",
                 "--plain", cwd=tmp_path)  # fmt: skip
    assert finals.returncode == 0, finals.stdout + finals.stderr
    data = summary(tmp_path)
    assert data["trained"] == 2 and len(data["members"]) == 2  # of the winner, one new
    assert len(load_study(storage, "toy.ensemble").trials) == 5
    means = {f["trial"]: f["mean"] for f in data["finalists"]}
    assert sorted(means) == sorted(t.number for t in best[:2])
    winner = min(means, key=means.__getitem__)  # val_nll: lower is better
    assert data["finalists"][0]["trial"] == winner
    assert all(len(f["values"]) == 2 for f in data["finalists"])
    searched = {t.number: t.value for t in best[:2]}
    assert {f["trial"]: f["search_value"] for f in data["finalists"]} == searched
    report = (tmp_path / "reports/toy-uq.html").read_text()
    assert "Finalists re-evaluated" in report and f"search #{winner}" in report
    sources = {re.search(r"search #(\d+)", m["label"]).group(1) for m in data["members"]}
    assert sources == {str(winner)}
    assert f"search #{winner} has the best mean" in finals.stdout
    topk = cli("ensemble", "toy", "--select", "topk", "--candidates", "2", cwd=tmp_path)
    assert topk.returncode == 2
    assert "--candidates 2: applies to --select seeds only" in topk.stderr

    # Nothing left to train: a rerun builds the same ensemble without a cluster.
    rerun = cli("ensemble", "toy", "--select", "seeds", "--size", "3", "--plain", cwd=tmp_path)
    assert rerun.returncode == 0 and "training" not in rerun.stdout
    assert len(load_study(storage, "toy.ensemble").trials) == 5


def interrupted_while_members_train(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """The command ``args`` sent SIGINT (Ctrl-C) once it saved an ensemble member."""
    members = tmp_path / "runs/toy/ensemble/trials"

    def saved() -> int:
        return len(list(members.iterdir())) if members.is_dir() else 0

    before = saved()
    command = [sys.executable, "-m", "supervisor.cli", *args]
    pipe = subprocess.PIPE
    with subprocess.Popen(command, cwd=tmp_path, stdout=pipe, stderr=pipe, text=True) as proc:
        deadline = time.monotonic() + 120
        while proc.poll() is None and saved() == before and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_an_interrupted_ensemble_is_not_built_of_the_members_done_so_far(
    tmp_path: Path,
) -> None:
    path = write_space(tmp_path, "ensemble: {select: seeds, size: 6}\n", trials=2)
    # Each trial and member takes a second.
    path.write_text(path.read_text().replace(f'{TOY}"}}', f'{TOY}", options: {{delay: 1}}}}'))
    # Both wrote an ensemble of the members trained so far and exited 0.
    code, out, err = interrupted_while_members_train(
        tmp_path, "search", "toy.yaml", "--workers", "1", "--plain", "--dashboard", ":0"
    )
    assert code == 130, out + err  # the search finished; its ensemble stage did not
    assert "ensemble of 'toy' not built: stopped by SIGINT" in out, out + err
    assert "Report: reports/toy.html" in out and (tmp_path / "reports/toy.html").is_file()
    assert not (tmp_path / "runs/toy/ensemble/ensemble.json").exists()
    code, out, err = interrupted_while_members_train(
        tmp_path, "ensemble", "toy", "--size", "8", "--workers", "1", "--plain"
    )
    assert code == 130, out + err
    assert "interrupted: ensemble of 'toy' not built: stopped by SIGINT" in err, out + err
    assert not (tmp_path / "runs/toy/ensemble/ensemble.json").exists()
    assert not (tmp_path / "reports/toy-uq.html").exists()
    again = cli("ensemble", "toy", "--size", "8", "--workers", "2", "--plain", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(summary(tmp_path)["members"]) == 8


def test_bad_ensemble_requests_give_one_line(tmp_path: Path) -> None:
    missing = cli("ensemble", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("error: nowhere: no run found")
    run_dir = tmp_path / "runs/toy"
    run_dir.mkdir(parents=True)
    space_file = str(write_space(tmp_path, trials=2))
    rundir.write_record(run_dir, rundir.RunRecord("toy", None, space_file, "supervisor search"))
    wrong = cli("ensemble", "toy", "--select", "best", cwd=tmp_path)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [
        "error: --select 'best': expected one of auto, topk, greedy, seeds"
    ]
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]  # nothing written


# -- aggregation -----------------------------------------------------------------------------


def _member(i: int, val: np.ndarray, test: np.ndarray, y: np.ndarray) -> Member:
    outputs = {"val": val, "test": test, "y_val": y, "y_test": y}
    return Member(i, "s", f"#{i}", None, outputs)


def test_classification_ensemble_of_identical_members_is_the_member() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), 50)
    y = rng.integers(0, 3, 50)
    ev = evaluate("classification", [_member(i, probs, probs, y) for i in range(3)])
    assert ev.ensemble["nll"] == pytest.approx(ev.best_member["nll"])
    assert ev.ensemble["mutual_information"] == pytest.approx(0.0, abs=1e-12)
    assert np.all(ev.panels["disagreement"] == 0)
    assert [s["size"] for s in ev.by_size] == [1.0, 2.0, 3.0]


def test_complementary_members_average_to_a_better_nll() -> None:
    y = np.array([0, 1] * 50)
    right = np.where(y[:, None] == np.arange(2), 0.9, 0.1)
    a, b = right.copy(), right.copy()
    a[:50:2], b[1:50:2] = right[:50:2, ::-1], right[1:50:2, ::-1]  # each wrong on other half
    ev = evaluate("classification", [_member(0, a, a, y), _member(1, b, b, y)])
    assert ev.ensemble["nll"] < min(m["nll"] for m in ev.members)
    assert ev.ensemble["nll"] == pytest.approx(uq.nll(uq.mean_probabilities(np.stack([a, b])), y))
    assert ev.ensemble["mutual_information"] > 0


def test_regression_mixture_splits_the_variance() -> None:
    y = np.zeros(10)
    members = [
        Member(i, "s", f"#{i}", None, {"val": p, "test": p, "y_val": y, "y_test": y})
        for i, p in enumerate([np.tile([0.0, 1.0], (10, 1)), np.tile([2.0, 1.0], (10, 1))])
    ]
    ev = evaluate("regression", members)
    assert ev.ensemble["aleatoric"] == pytest.approx(1.0)
    assert ev.ensemble["epistemic"] == pytest.approx(1.0)
    assert ev.members[0]["epistemic"] == 0.0


def test_generative_ensembles_pool_the_members_statistics() -> None:
    k = np.arange(1.0, 5.0)
    ref, flat = np.ones(4), np.ones(4)
    edges = np.linspace(-1, 1, 5)

    def gan(i: int, spectrum: list[float], hist: list[int], value: float) -> Member:
        outputs = {"k": k, "spectrum": np.array(spectrum), "ref_spectrum": ref,
                   "hist_edges": edges, "hist": np.array(hist), "ref_hist": flat}  # fmt: skip
        return Member(i, "s", f"#{i}", value, outputs)

    low, high = gan(0, [0.5] * 4, [2, 0, 2, 0], 0.3), gan(1, [1.5] * 4, [0, 2, 0, 2], 0.2)
    ev = evaluate("generative", [low, high], maximize=False)
    assert ev.members[0]["ps_error"] == pytest.approx(0.5)
    assert ev.ensemble["ps_error"] == pytest.approx(0.0)  # 0.5 and 1.5 pool to 1
    assert ev.ensemble["hist_ks"] == pytest.approx(0.0)  # the pooled histogram is flat
    assert ev.best_member_index == 1  # by the search objective (minimized), not the test set


def test_basecallers_of_different_strides_ensemble_on_the_signal_s_time_axis() -> None:
    from benchmarks_sci.nanopore import NanoporeBenchmark

    def steps(labels: list[int], width: int) -> np.ndarray:
        """Per-step probabilities of a basecaller that reads ``labels`` (4: blank) over
        ``width`` steps each (its stride), a little unsure."""
        probs = np.full((len(labels) * width, 5), 0.05)
        probs[np.arange(len(probs)), np.repeat(labels, width)] = 0.8
        return probs[None]  # one read

    y = np.array([[0, 1, 1, 3]])  # A C C T
    read = [0, 4, 1, 4, 1, 4, 3, 4]  # blanks between bases: C C stays two bases
    bench = NanoporeBenchmark({})
    # Strides 3 and 2 over one 48-sample segment: 16 and 24 steps, 2 and 3 a label.
    coarse, fine = steps(read, 2), steps(read, 3)
    members = [
        Member(i, "s", f"#{i}", 1.0, {"val": p, "test": p, "y_val": y, "y_test": y})
        for i, p in enumerate((coarse, fine))
    ]
    # A searched stride made the top members' outputs of different lengths: the ensemble
    # failed, "members' 'test' differ in shape" (a traceback from supervisor ensemble).
    ev = evaluate("sequence", members, decode=bench.decode, identity=bench.read_identity)
    assert ev.ensemble["identity"] == 1.0 and [m["identity"] for m in ev.members] == [1.0, 1.0]
    assert ev.ensemble["confidence"] == pytest.approx(0.8)


def test_a_read_decoded_empty_leaves_the_others_confidence() -> None:
    from benchmarks_sci.nanopore import NanoporeBenchmark

    bench = NanoporeBenchmark({})
    probs = np.full((2, 4, 5), 0.05)
    probs[0, :, 0] = 0.8  # one read of A, its steps 80 % sure
    probs[1, :, 4] = 0.8  # only blanks: an empty read
    y = np.array([[0], [1]])
    member = Member(0, "s", "#0", 0.5, {"val": probs, "test": probs, "y_val": y, "y_test": y})
    ev = evaluate("sequence", [member], decode=bench.decode, identity=bench.read_identity)
    # One empty read made the ensemble's and every member's confidence NaN in the report.
    assert ev.ensemble["confidence"] == pytest.approx(0.8)
    assert ev.ensemble["identity"] == 0.5


def test_members_that_do_not_combine_are_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import supervisor
    import supervisor.ensemble.build

    monkeypatch.chdir(tmp_path)
    write_space(tmp_path, trials=2)
    run = supervisor.search(tmp_path / "toy.yaml", workers=1, report=False, progress="none")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ValueError("search #1: its y_test differ from search #0's (other data?)")

    monkeypatch.setattr(supervisor.ensemble.build, "evaluate", refuse)
    with pytest.raises(supervisor.UserError, match=r"^ensemble of 'toy' not built: search #1"):
        run.ensemble(select="topk", size=2)
    assert not (tmp_path / "runs/toy/ensemble/ensemble.json").exists()


def test_a_member_whose_predictions_diverged_is_left_out_with_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member with NaN among its saved predictions (it diverged) is left out, and the
    ensemble is built of the others, not refused as a whole."""
    import supervisor

    monkeypatch.chdir(tmp_path)
    write_space(tmp_path, "ensemble: {select: topk, size: 3}\n", trials=3)
    run = supervisor.search(tmp_path / "toy.yaml", workers=1, report=False, progress="none")
    numbers = list(run.trials.sort_values("val_nll")["number"])
    assert summary(tmp_path)["failed"] == []
    path = rundir.trial_dir(run.run_dir, numbers[0]) / rundir.OUTPUTS_FILE
    with np.load(path) as saved:
        arrays = {k: saved[k] for k in saved.files}
    for name, array in arrays.items():
        if array.dtype.kind == "f":
            arrays[name] = np.full_like(array, np.nan)
    np.savez(path, **arrays)
    built = run.ensemble(select="topk", size=3)
    assert sorted(m.trial for m in built.members) == sorted(numbers[1:])
    assert len(built.failed) == 1 and f"search #{numbers[0]}" in built.failed[0]
    assert "its predictions hold NaN or infinite values" in built.failed[0]
    assert summary(tmp_path)["failed"] == built.failed


def test_members_of_other_data_are_refused() -> None:
    y = np.array([0, 1])
    p = np.array([[0.5, 0.5], [0.5, 0.5]])
    other = _member(1, p, p, y[::-1])
    with pytest.raises(ValueError, match="differ"):
        evaluate("classification", [_member(0, p, p, y), other])


def test_the_flags_override_the_file_s_finalists_only_where_they_apply() -> None:
    """``--select topk`` over a file's ``select: seeds, candidates: 4`` leaves the
    finalists out; ``--candidates`` with another selection is refused."""
    from types import SimpleNamespace

    from supervisor.commands.ensemble import EnsembleOptions, config_for
    from supervisor.config.ensemble import EnsembleConfig
    from supervisor.errors import UserError

    exp: Any = SimpleNamespace(ensemble=EnsembleConfig(select="seeds", size=3, candidates=4))
    assert config_for(exp, EnsembleOptions(run="r")).candidates == 4
    assert config_for(exp, EnsembleOptions(run="r", select="topk")).candidates == 1
    assert config_for(exp, EnsembleOptions(run="r", candidates=2)).candidates == 2
    with pytest.raises(UserError, match="--candidates 2: applies to --select seeds only"):
        config_for(exp, EnsembleOptions(run="r", select="greedy", candidates=2))


def test_a_configuration_told_by_warm_start_trains_again_as_a_member(tmp_path: Path) -> None:
    """The best configurations may come from an earlier run: told, never trained here, so
    the ensemble trains them under this run's settings."""
    write_space(tmp_path, trials=4)
    assert search(tmp_path).returncode == 0
    later = tmp_path / "later.yaml"
    later.write_text(
        (tmp_path / "toy.yaml").read_text().replace("study: toy", "study: later")
        .replace("trials: 4", "trials: 1")
    )  # fmt: skip
    warm = cli("search", "later.yaml", "--workers", "1", "--plain", "--dashboard", ":0",
               "--warm-start", "toy", cwd=tmp_path)  # fmt: skip
    assert warm.returncode == 0 and "Warm start: 4 trials from toy" in warm.stdout, warm.stdout
    built = cli("ensemble", "later", "--select", "topk", "--size", "2", "--workers", "2",
                "--plain", cwd=tmp_path)  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    data = json.loads((tmp_path / "runs/later/ensemble/ensemble.json").read_text())
    storage = f"journal:{tmp_path}/runs/later/journal.log"
    trials = load_study(storage, "later").get_trials()
    chosen = [int(re.search(r"search #(\d+)", m["label"]).group(1)) for m in data["members"]]
    told = [n for n in chosen if attrs.WARM_START in trials[n].user_attrs]
    assert told, "of 5 candidates 4 were told: the best 2 hold at least one"
    assert data["trained"] == 2 and data["reused"] == 0  # no outputs kept: both train
    members = load_study(storage, "later.ensemble").get_trials(states=(TrialState.COMPLETE,))
    assert {n: trials[n].params for n in told}.items() <= {
        t.user_attrs[attrs.MEMBER_OF]: t.params for t in members
    }.items()


def test_members_train_as_their_search_trials_did_after_a_resume_changed_the_space(
    tmp_path: Path,
) -> None:
    """A search resumed with other benchmark options and epochs in its space file: the
    ensemble trained every member with the new ones, also members of trials trained with
    the old ones (a model the search never scored stood in for the one it ranked). Each
    member now trains with its search trial's recorded options, inputs and epochs."""
    path = write_space(tmp_path, trials=2)
    path.write_text(path.read_text().replace('"}\n', '", options: {spread: 1.0}}\n', 1))
    assert search(tmp_path).returncode == 0
    text = path.read_text().replace("spread: 1.0", "spread: 3.0")
    path.write_text(text.replace("trials: 2, epochs: 2", "trials: 3, epochs: 3"))
    resumed = search(tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    built = cli("ensemble", "toy", "--select", "topk", "--size", "3", "--workers", "2",
                "--plain", cwd=tmp_path)  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    # Their predictions are of other inputs (another spread): those of the best's kept.
    assert "left out, predicting other inputs than search #" in built.stdout
    storage = f"journal:{tmp_path}/runs/toy/journal.log"
    searched = load_study(storage, "toy").trials
    members = load_study(storage, "toy.ensemble").get_trials(states=(TrialState.COMPLETE,))
    assert len(members) == 3
    for m in members:
        source = searched[m.user_attrs[attrs.MEMBER_OF]]
        assert len(m.user_attrs["history"]) == len(source.user_attrs["history"])
        assert m.value == pytest.approx(source.value), source.number  # the same model
    epochs = sorted(len(searched[m.user_attrs[attrs.MEMBER_OF]].user_attrs["history"])
                    for m in members)  # fmt: skip
    assert epochs == [2, 2, 3]  # both sessions' trials are members


class SeedParity(ToyClassifier):
    """Reports its model seed's parity (``odd``), a metric a constraint bounds: the seeds
    an ensemble trains (the search's seed plus multiples of an odd stride) alternate."""

    metrics: ClassVar[dict[str, Direction]] = {**ToyClassifier.metrics, "odd": "minimize"}

    def build_model(self, params: Any, seed: int) -> Any:
        model = super().build_model(params, seed)
        model.seed = seed
        return model

    def fit(self, model: Any, data: Any, params: Any, epochs: int, report: Any) -> Any:
        return super().fit(model, data, params, epochs, report) | {"odd": model.seed % 2}


def test_members_trained_for_the_ensemble_are_judged_by_the_constraints(tmp_path: Path) -> None:
    """A member trained with a new seed measures anew: one that broke the space file's
    bound joined the ensemble all the same (the ensemble broke it), and nothing said so."""
    (tmp_path / "toy.yaml").write_text(
        f'study: toy\nbenchmark: {{name: "{__name__}:SeedParity"}}\n'
        "objectives: [val_nll]\n"
        "params:\n  lr: {type: float, low: 0.01, high: 1.0, log: true}\n"
        "constraints: {odd: {max: 0.5}}\n"
        "budget: {trials: 4, epochs: 2}\nsampler: random\nseed: 4\n"
        "ensemble: {select: seeds, size: 3}\n"
    )
    result = search(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    data = summary(tmp_path)
    (best,) = {m["label"].split(",")[0] for m in data["members"]}
    assert len(data["members"]) == 2  # the search's even seed and the second extra one
    (excluded,) = data["excluded"]
    assert re.fullmatch(rf"{best}, seed \d+ \(member #\d+\): breaks odd <= 0.5 \(1\)", excluded)
    assert "1 member(s) left out, breaking the constraints: " + excluded in result.stdout
    report = (tmp_path / "reports/toy-uq.html").read_text()
    assert "left out, breaking the constraints" in report
