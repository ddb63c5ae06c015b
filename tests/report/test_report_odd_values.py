"""The campaign report on odd data: values far beyond the others (a diverged training),
inf and nan, and user strings that look like plotly's label markup."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from supervisor.report.ranges import fence
from supervisor.report.search import write_search_report
from tests.report.test_report import _array, _figures_in, _params, _section, _trial


def _notes(html: str, anchor: str) -> str:
    return " ".join(re.findall(r'<p class="note">(.*?)</p>', _section(html, anchor)))


def _diverged_study() -> optuna.Study:
    """Eight ordinary trials (score 0.5 to 0.57), one whose training diverged to 1e37 and
    one whose history has inf and nan."""
    study = optuna.create_study(study_name="div", direction="minimize")
    study.set_user_attr("supervisor:objectives", ["score"])
    trials = [
        _trial(i, TrialState.COMPLETE, _params(i), [0.5 + 0.01 * i], [0.1, 0.3, 0.5 + 0.01 * i])
        for i in range(8)
    ]
    trials.append(_trial(8, TrialState.COMPLETE, _params(8), [1e37], [0.1, 1e20, 1e37]))
    odd = [0.1, float("inf"), float("nan")]
    trials.append(_trial(9, TrialState.COMPLETE, _params(9), [0.3], odd))
    study.add_trials(trials)
    return study


def test_a_diverged_curve_does_not_flatten_the_others(tmp_path: Path) -> None:
    """A curve reaching 1e37 set the y-axis on its own: every other curve was a flat line
    at the bottom. The axis now shows the ordinary curves, and a note names the trial."""
    html = write_search_report(_diverged_study(), tmp_path / "r.html").read_text()
    (fig,) = _figures_in(html, "curves")
    low, high = fig["layout"]["yaxis"]["range"]
    assert 0.0 < low < 0.1 and 0.57 < high < 0.7
    notes = _notes(html, "curves")
    assert "far beyond those of the other trials (up to 1e+37), of trial #8" in notes
    assert "Trial #9 reported inf or nan score" in notes
    # inf and nan are gaps, never a value plotly would have to scale to.
    for trace in fig["data"]:
        y = _array(trace["y"]).astype(float)
        assert not np.isinf(y).any()


def test_an_extreme_objective_value_does_not_flatten_the_optuna_figures(tmp_path: Path) -> None:
    html = write_search_report(_diverged_study(), tmp_path / "r.html").read_text()
    (history,) = _figures_in(html, "history")
    low, high = history["layout"]["yaxis"]["range"]
    assert 0.2 < low < 0.3 and 0.57 < high < 0.7  # trial 9's 0.3 to trial 7's 0.57
    assert "Beyond the y-axis" in _notes(html, "history")
    for anchor in ("parallel", "slice", "contour"):
        assert "trial #8 (score 1e+37)" in _notes(html, anchor), anchor
        for fig in _figures_in(html, anchor):
            for trace in fig["data"]:
                for key in ("y", "z"):
                    if key in trace and trace[key] is not None:
                        values = _array(trace[key])
                        if values.dtype.kind == "f":
                            assert not (np.abs(values[np.isfinite(values)]) > 1e30).any()
    # Parallel coordinates scale each axis to its values: the objective's axis of the
    # other trials spans it again, not a sliver at one end.
    (parallel,) = _figures_in(html, "parallel")
    objective = [_array(t["y"])[0] for t in parallel["data"] if t.get("mode") == "lines"]
    assert max(objective) - min(objective) > 0.5


def test_ordinary_spreads_are_left_alone(tmp_path: Path) -> None:
    """Losses over four decades, a uniform spread, few values: nothing counts as far."""
    assert fence(list(np.logspace(-2, 2, 100))) is None
    assert fence(list(range(100))) is None
    assert fence([1.0, 2.0]) is None
    assert fence([0.5, 0.6, 1e37]) is not None
    # Most trials alike (an accuracy of 1.0) and one not: not far.
    assert fence([1.0, 1.0, 1.0, 1.0, 0.9]) is None and fence([1, 1, 1, 1, 2]) is None
    assert fence([1.0, 1.0, 1.0, 1.0, 1e37]) is not None
    html = write_search_report(_diverged_study_without_outliers(), tmp_path / "r.html").read_text()
    assert "range" not in _figures_in(html, "curves")[0]["layout"]["yaxis"]
    assert "far beyond" not in html


def _diverged_study_without_outliers() -> optuna.Study:
    study = optuna.create_study(study_name="plain", direction="minimize")
    study.set_user_attr("supervisor:objectives", ["score"])
    study.add_trials(
        [
            _trial(
                i + 2, TrialState.COMPLETE, _params(i + 2), [10.0**i], [10.0**i, 10.0 ** (i - 1)]
            )
            for i in range(-2, 3)
        ]
    )
    return study


def test_label_markup_is_escaped_for_plotly(tmp_path: Path) -> None:
    """plotly.js reads labels as HTML: a categorical choice "<b>x</b>" showed as a bold x.
    The figure data carries the entities plotly turns back into the characters; the tags
    the figures use on purpose (line breaks, the hover box) stay. (In a browser:
    test_browser.test_label_markup_in_user_strings_shows_as_written.)"""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from supervisor.report.labels import literal

    assert literal("<b>x</b> & <br>") == "&lt;b&gt;x&lt;/b&gt; &amp; <br>"
    assert literal("&lt;b&gt;") == "&amp;lt;b&amp;gt;"  # text that looks escaped stays so
    choices = ["<b>x</b>", "plain"]
    dists = {"act": CategoricalDistribution(choices), "lr": FloatDistribution(1e-4, 0.1)}
    study = optuna.create_study(study_name="tags", direction="minimize")
    study.set_user_attr("supervisor:objectives", ["<i>loss</i>"])
    study.add_trials(
        [
            _trial(i, TrialState.COMPLETE, {"act": choices[i % 2], "lr": 0.001 * (i + 1)},
                   [1 / (i + 1)], [1.0, 1 / (i + 1)], dists=dists)
            for i in range(6)
        ]
    )  # fmt: skip
    html = write_search_report(study, tmp_path / "r.html").read_text()
    (contour,) = _figures_in(html, "contour")
    categories = {x for t in contour["data"] for x in t.get("x") or () if isinstance(x, str)}
    assert categories == {"&lt;b&gt;x&lt;/b&gt;", "plain"}
    (history,) = _figures_in(html, "history")
    assert history["data"][0]["name"] == "&lt;i&gt;loss&lt;/i&gt;"
    curves = _figures_in(html, "curves")[0]["data"]
    assert any(t.get("hovertemplate", "").endswith("<extra></extra>") for t in curves)


def test_the_pareto_report_leaves_a_diverged_trial_out_of_its_reference_point() -> None:
    """A trial with a latency of 1e37 put the reference point at 1.1e37: every hypervolume
    was that times the rest (the history flat however the front improved), and the fronts
    a corner of their figures."""
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.trial import create_trial

    from supervisor.report.campaign import Campaign
    from supervisor.report.pareto import hypervolume, reference_point, render_pareto_report
    from tests.report.test_pareto import three_objective_study

    study = three_objective_study()
    plain = reference_point(Campaign.load(study))
    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "units": IntDistribution(8, 64)}
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            values=[0.5, 1e37, 800.0],
            params={"lr": 0.01, "units": 8},
            distributions=dists,
        )
    )
    camp = Campaign.load(study)
    assert set(camp.outliers) == {30}
    reference = reference_point(camp)
    assert reference == plain  # as without the diverged trial
    assert hypervolume(camp, reference) < 1e10
    html = render_pareto_report(study)
    assert "leaving out the trials far beyond the others" in html
    assert "#30 (latency_ms 1e+37)" in html
    for fig in _figures_in(html, "front"):
        for trace in fig["data"]:
            for key in ("x", "y", "z"):
                values = _array(trace.get(key) or [])
                if values.dtype.kind == "f":
                    assert not (np.abs(values[np.isfinite(values)]) > 1e30).any()


def test_a_far_out_sample_does_not_make_one_bar_of_the_variance_histogram(
    tmp_path: Path,
) -> None:
    """One test sample on which a member predicts 1e6 (out of distribution) has an
    epistemic variance of ~1e11: plotly's bins spanned it, and every other sample fell
    into the first bar."""
    from supervisor.config.ensemble import EnsembleConfig
    from supervisor.ensemble.aggregate import Member, evaluate
    from supervisor.ensemble.build import Built
    from supervisor.report.uq import write_uq_report
    from tests.report.test_browser import _uq_members

    members = _uq_members("regression", np.random.default_rng(1))
    test = members[2].outputs["test"].copy()
    test[0, 0] = 1e6
    members[2] = Member(2, "s", "m2", 0.2, {**members[2].outputs, "test": test})
    ev = evaluate("regression", members, maximize=False)
    built = Built(EnsembleConfig(), "topk", ev, members, 1, 2, [], tmp_path / "e.json", None)
    html = write_uq_report(built, tmp_path / "x-uq.html", "s").read_text()
    (fig,) = _figures_in(html, "variance")
    for trace in fig["data"]:
        assert trace["xbins"]["end"] < 100  # the ordinary variances are ~1 to 10
    assert "1 variances far beyond the others (up to 2.22e+11) are not drawn" in _notes(
        html, "variance"
    )


def test_the_pareto_reports_learning_curves_take_odd_histories() -> None:
    """Its learning curves read the history apart from the campaign report's: an epoch
    that is no number (a study written by another tool) raised ValueError and the figure
    was "Could not draw", and a spike to 1e37 flattened the other curves."""
    from supervisor.report.pareto import render_pareto_report
    from tests.report.test_pareto import three_objective_study

    study = three_objective_study()
    front = study.best_trials
    odd, spiked = front[0], front[1]
    odd.user_attrs["history"] = [{"epoch": "first", "accuracy": 0.5}, {"accuracy": 0.7}]
    spiked.user_attrs["history"] = [
        {"epoch": 0.0, "accuracy": 0.5},
        {"epoch": 1.0, "accuracy": 1e37},
    ]
    study = optuna.create_study(study_name="mo3", directions=study.directions)
    study.set_user_attr("supervisor:objectives", ["accuracy", "latency_ms", "n_params"])
    study.add_trials([*front])
    html = render_pareto_report(study)
    assert "Could not draw" not in html
    (fig,) = _figures_in(html, "curves")
    by_name = {t["name"]: t for t in fig["data"]}
    assert list(_array(by_name[f"trial #{odd.number}"]["x"])) == [0.0, 1.0]
    assert fig["layout"]["yaxis"]["range"][1] < 10
    assert f"of trial #{spiked.number}; double-click" in _notes(html, "curves")


def test_an_odd_benchmark_artifact_costs_its_panel_not_the_report(tmp_path: Path) -> None:
    """Arrays a panel reads before drawing (an alphabet saved as floats, maps saved as
    text) raised out of the report: `supervisor report`, and the report at the end of a
    search, failed with a ValueError. The panel is now a note; the others are drawn."""
    from tests.report.test_report import _single_study

    run_dir = tmp_path / "run"
    (run_dir / "trials/000007").mkdir(parents=True)
    np.savez(
        run_dir / "trials/000007/artifacts.npz",
        signal=np.zeros(10),
        reference=np.array("ACGT"),
        decoded=np.array([0, 1]),
        alphabet=np.array([0.5, 1.5]),
        samples=np.array(["a", "b"]),
        confusion=np.eye(3) * 4 + 1,
    )
    html = write_search_report(
        _single_study(artifacts=True), tmp_path / "r.html", run_dir=run_dir
    ).read_text()
    assert "Could not draw the squiggle: ValueError: a read must be text or integers" in (
        _notes(html, "squiggle")
    )
    assert "Could not draw the generated maps: ValueError" in _notes(html, "maps")
    assert "data-figure=" in _section(html, "confusion")


def test_a_trial_told_a_result_has_no_duration_in_the_tables(tmp_path: Path) -> None:
    """A warm-start trial (trained for an hour in an earlier run) and a twin told another
    trial's result read "0.0 s" in the best-trials table: the time of the telling."""
    from supervisor.study import attrs

    study = optuna.create_study(study_name="told", direction="minimize")
    study.set_user_attr("supervisor:objectives", ["score"])
    study.add_trials([_trial(i, TrialState.COMPLETE, _params(i), [1.0 + i]) for i in range(3)])
    warm = _trial(3, TrialState.COMPLETE, _params(3), [0.1], **{attrs.WARM_START: "v1#7"})
    twin = _trial(4, TrialState.COMPLETE, _params(4), [0.2], **{attrs.DUPLICATE_OF: 0})
    for t in (warm, twin):
        del t.user_attrs["duration_s"]
        t.datetime_complete = t.datetime_start  # told at once
    study.add_trials([warm, twin])
    html = write_search_report(study, tmp_path / "r.html").read_text()
    rows = re.findall(r'<tr><td class="num">(\d+)</td>(.*?)</tr>', _section(html, "best"))
    cells = {int(n): re.findall(r"<td[^>]*>([^<]*)</td>", rest) for n, rest in rows}
    assert "0.0 s" not in cells[3] and "warm start: v1#7" in cells[3]
    assert "0.0 s" not in cells[4]
    assert any(c.endswith(" min 00 s") for c in cells[0])  # a trained one: 120 s


def test_the_learning_curves_note_counts_the_best_trials_it_colours(tmp_path: Path) -> None:
    """Warm-start trials have no history: where they were among the best, the note said
    "the 10 best complete trials in colour" of curves that were not the 10 best."""
    from supervisor.study import attrs

    study = optuna.create_study(study_name="warm", direction="minimize")
    study.set_user_attr("supervisor:objectives", ["score"])
    trained = [
        _trial(i, TrialState.COMPLETE, _params(i), [1.0 + i], [2.0, 1.0 + i]) for i in range(4)
    ]
    told = [
        _trial(4 + i, TrialState.COMPLETE, _params(i), [0.1 * i], **{attrs.WARM_START: f"v1#{i}"})
        for i in range(3)
    ]
    study.add_trials([*trained, *told])
    html = write_search_report(study, tmp_path / "r.html").read_text()
    assert (
        "in colour, the 4 best complete trials among them (3 better ones, told their results,"
        " have none)." in _notes(html, "curves")
    )
