"""A resume whose space changes a parameter the study cannot hold is refused before it
writes; ranges may change."""

from __future__ import annotations

from pathlib import Path

import pytest

import supervisor
from supervisor.study.space_change import incompatible
from tests.test_api import toy_space


def _space(params: dict[str, object], trials: int) -> dict[str, object]:
    space = toy_space(trials=trials)
    space["params"] = params
    return space


@pytest.mark.parametrize(
    ("changed", "problem"),
    [
        ({"type": "float", "low": -4, "high": 4}, "have it as choices ['a', 'b']"),
        (["a", "b", "c"], "which Optuna cannot change to choices ['a', 'b', 'c']"),
    ],
)
def test_a_changed_categorical_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changed: object, problem: str
) -> None:
    """It used to start, and every new trial failed with "sampling failed", counted as a
    model failure: fail fast stopped the run, and each rerun added failures."""
    monkeypatch.chdir(tmp_path)
    x = {"type": "float", "low": -4, "high": 4}
    supervisor.search(_space({"x": x, "c": ["a", "b"]}, 2), workers=1, progress="none")
    run_dir = tmp_path / "runs" / "api-toy"
    before = {p: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(supervisor.UserError, match=r"params\.c: the study's trials") as info:
        supervisor.search(_space({"x": x, "c": changed}, 4), workers=1, progress="none")
    assert problem in str(info.value)
    assert {p: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_a_wider_range_is_no_change_the_study_refuses() -> None:
    import optuna

    from supervisor.config.params import ParamSpec

    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("n", 1, 3), 2)
    wider = (ParamSpec("x", "float", 0, 2), ParamSpec("n", "int", 1, 5))
    assert incompatible(study, wider) is None
    logged = (ParamSpec("x", "float", 0.1, 1, log=True),)
    assert incompatible(study, logged) == (
        "x",
        "the study's trials have it as a float in [0.0, 1.0], which Optuna cannot change to a"
        " float in [0.1, 1.0], log scale within a study; keep it, or start a new study"
        " (--study NAME)",
    )


FUNCTION = "supervisor.benchmarks.functions:TestFunction"


def _function_space(objective: str) -> dict[str, object]:
    space = toy_space(trials=4, objectives=[objective])
    space["benchmark"] = {"name": FUNCTION, "options": {"function": "branin"}}
    space["params"] = {f"x{i}": {"type": "float", "low": 0, "high": 1} for i in (0, 1)}
    return space


@pytest.mark.parametrize(
    ("first", "other", "problem"),
    [
        (
            toy_space(trials=3),
            _function_space("value"),
            f"of benchmark 'tests.toy_benchmark:ToyBenchmark', the space file runs '{FUNCTION}'",
        ),
        (
            _function_space("value"),
            _function_space("regret"),
            "of objectives ['value'], the space file asks for ['regret']",
        ),
    ],
)
def test_another_campaign_under_the_study_name_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first: dict[str, object],
    other: dict[str, object],
    problem: str,
) -> None:
    """On a database a team shares, another user's study of the same name (same
    directions): the search took it over, counted its trials toward this budget (10 of
    40 trained) and overwrote its record. Refused, the study left as it was."""
    from supervisor.study.storage import load_study

    storage = f"journal:{tmp_path}/shared.log"
    (tmp_path / "alice").mkdir()
    (tmp_path / "bob").mkdir()
    monkeypatch.chdir(tmp_path / "alice")
    supervisor.search(first, storage=storage, workers=1, progress="none", report=False)
    before = load_study(storage, "api-toy")
    monkeypatch.chdir(tmp_path / "bob")
    with pytest.raises(supervisor.UserError, match=r"is another campaign") as info:
        supervisor.search(other, storage=storage, workers=1, progress="none", report=False)
    assert problem in str(info.value) and "use another study name (--study)" in str(info.value)
    after = load_study(storage, "api-toy")
    assert len(after.trials) == len(before.trials) and after.user_attrs == before.user_attrs
    assert not (tmp_path / "bob" / "runs").exists()


@pytest.mark.parametrize(
    ("sampler", "changed", "problem"),
    [
        (
            "turbo",
            {"x": {"type": "float", "low": -4, "high": 8}},
            "params.x: its trials hold it as a float in [-4.0, 4.0], this space as a float in"
            " [-4.0, 8.0]; the turbo sampler models only parameters every trial holds alike,"
            " so it would draw x at random from now on; keep it as it was, or start a new"
            " study (--study NAME) with warm_start: api-toy",
        ),
        (
            "cmaes",
            {"x": {"type": "float", "low": -4, "high": 4, "step": 0.5}},
            "this space as a float in [-4.0, 4.0], step 0.5; the cmaes sampler",
        ),
        (
            "turbo",
            {
                "x": {"type": "float", "low": -4, "high": 4},
                "y": {"type": "int", "low": 1, "high": 3},
            },
            "params.y: complete trials of the study lack it (new to this space); the turbo"
            " sampler models only parameters every trial holds alike, so it would draw y at"
            " random from now on; leave it out (or fixed), or start a new study (--study NAME)",
        ),
    ],
)
def test_a_range_or_parameter_a_sampler_of_shared_parameters_cannot_model_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sampler: str,
    changed: dict[str, object],
    problem: str,
) -> None:
    """turbo (the default sampler), cmaes, gp, nsgaii and nsgaiii model only what every
    complete trial holds with one distribution. A resume with a range widened or a new
    parameter started, and drew that parameter at random for the rest of the campaign
    (CMA-ES, its dimension changed, every parameter), without a word."""
    monkeypatch.chdir(tmp_path)
    x = {"type": "float", "low": -4, "high": 4}
    first = _space({"x": x}, 3) | {"sampler": sampler}
    supervisor.search(first, workers=1, progress="none")
    run_dir = tmp_path / "runs" / "api-toy"
    before = {p: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(supervisor.UserError) as info:
        supervisor.search(_space(changed, 5) | {"sampler": sampler}, workers=1, progress="none")
    assert problem in str(info.value)
    assert {p: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    # Unchanged, it resumes; so does TPE, which models each parameter on its own.
    supervisor.search(_space({"x": x}, 4) | {"sampler": sampler}, workers=1, progress="none")
    supervisor.search(_space(changed, 5) | {"sampler": "tpe"}, workers=1, progress="none")


def test_dry_run_and_validate_refuse_the_resume_the_search_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--dry-run`` and ``validate`` said "valid ... (exists: the search resumes)" for a
    resume the search then refused (exit 2), and the search refused it only once its
    cluster had started (a batch launcher's worker jobs queued for nothing)."""
    import yaml

    from tests.commands.test_cli import cli

    monkeypatch.chdir(tmp_path)
    turbo = {"sampler": "turbo"}
    supervisor.search(_space({"x": {"type": "float", "low": -4, "high": 4}}, 2) | turbo)
    wider = _space({"x": {"type": "float", "low": -4, "high": 5}}, 4) | turbo
    (tmp_path / "wider.yaml").write_text(yaml.safe_dump(wider))
    problem = "wider.yaml: params.x: its trials hold it as a float in [-4.0, 4.0]"
    for argv in (["validate", "wider.yaml"], ["search", "wider.yaml", "--dry-run"]):
        result = cli(*argv, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1
        assert problem in result.stderr and "valid" not in result.stdout
    result = cli("search", "wider.yaml", "--workers", "1", "--plain", cwd=tmp_path)
    assert result.returncode == 2 and problem in result.stderr
    assert "local cluster" not in result.stdout and "Dask dashboard" not in result.stdout


def test_a_dry_run_reads_the_study_in_a_storage_file_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``--storage`` a journal or SQLite file (a journal on a shared file system),
    the dry run checks the resume as the search does; a file with no study is a new one."""
    import yaml

    from tests.commands.test_cli import cli

    monkeypatch.chdir(tmp_path)
    turbo = {"sampler": "turbo"}
    for url in ("sqlite:///s.db", f"journal:{tmp_path / 'j.log'}"):
        first = _space({"x": {"type": "float", "low": -4, "high": 4}}, 2) | turbo
        supervisor.search(first | {"study": url[:6]}, storage=url, progress="none")
        wider = _space({"x": {"type": "float", "low": -4, "high": 5}}, 4) | turbo
        (tmp_path / "wider.yaml").write_text(yaml.safe_dump(wider | {"study": url[:6]}))
        result = cli("search", "wider.yaml", "--storage", url, "--dry-run", cwd=tmp_path)
        assert result.returncode == 2 and "params.x: its trials hold it" in result.stderr
        fresh = cli("search", "wider.yaml", "--study", "new", "--storage", url, "--dry-run",
                    cwd=tmp_path)  # fmt: skip
        assert fresh.returncode == 0, fresh.stderr


def test_a_resume_that_trains_otherwise_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resume with other epochs (or fixed values, or benchmark options) than the study's
    trials were trained with started without a word: the study then held values that do
    not compare, and a configuration trained before was told its old value, not trained
    again. It is allowed (each trial keeps what it was given), and said."""
    monkeypatch.chdir(tmp_path)
    x = {"type": "float", "low": -4, "high": 4}
    supervisor.search(_space({"x": x}, 2), workers=1, progress="plain", report=False)
    assert "note: this run trains otherwise" not in capsys.readouterr().out
    longer = _space({"x": x}, 3)
    longer["budget"] = {"trials": 3, "epochs": 5}
    longer["fixed"] = {"width": 8}
    supervisor.search(longer, workers=1, progress="plain", report=False)
    assert (
        "note: this run trains otherwise than the study's earlier trials (trained 2 epochs,"
        " this run 5; fixed values differ: width): their values do not compare with its own,"
        " and a configuration they measured is not trained again; start a new study"
        " (--study NAME) with warm_start: api-toy to compare like with like"
    ) in capsys.readouterr().out
    longer["budget"] = {"trials": 4, "epochs": 5}
    supervisor.search(longer, workers=1, progress="plain", report=False)
    assert "note: this run trains otherwise" not in capsys.readouterr().out
