"""The reports in a real browser: headless Chromium loads each one from disk.

Each page must load with no console error and no uncaught exception, fetch nothing from
the network, and draw every figure (plotly leaves an ``svg.main-svg`` in each figure div).
A screenshot of each page is saved as a test artifact ($PYTEST_ARTIFACTS, else
/tmp/supervisor-test-artifacts). Injected HTML and JavaScript in study names, parameter
values, error messages and benchmark artifacts must show as text and never run.

Chromium is driven through the DevTools protocol over a pipe (--remote-debugging-pipe:
NUL-terminated JSON on file descriptors 3 and 4), which needs no websocket library.
Install it with tests/system/chromium.sh; without it these tests skip and say why.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from supervisor.report.search import write_search_report
from tests.report.test_report import _single_study, _trial

pytestmark = pytest.mark.browser

ARTIFACTS = Path(os.environ.get("PYTEST_ARTIFACTS") or "/tmp/supervisor-test-artifacts")
FLAGS = [
    "--headless",
    "--no-sandbox",  # root in a container: the sandbox needs user namespaces
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
PWNED = "pwned"
INJECTED = [
    f"<script>document.title='{PWNED}'</script>",
    f"</script><img src=x onerror=\"document.title='{PWNED}'\">",
    f'"><svg onload="document.title=\'{PWNED}\'">',
]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _above_9(fd: int) -> int:
    """The same pipe end on a descriptor of 10 or more."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """One headless Chromium, one page, spoken to over the DevTools pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Above 9, so that the redirections below cannot overwrite one another (under
        # pytest's output capture the pipes may well get descriptors 3 and 4).
        to_chrome_r, from_chrome_w = _above_9(to_chrome_r), _above_9(from_chrome_w)
        # Chromium reads commands on fd 3 and writes replies and events on fd 4.
        trampoline = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self.proc = subprocess.Popen(
            # bash: dash takes only one-digit descriptors in redirections.
            ["bash", "-c", trampoline, executable, *FLAGS, f"--user-data-dir={profile}"],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=self.session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=self.session,
            width=1400,
            height=1000,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_chrome, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        with self._lock:
                            self._replies[message["id"]] = message
                            self._lock.notify_all()
                    else:
                        self._events.put(message)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        with self._lock:
            if not self._lock.wait_for(lambda: self._next_id in self._replies, timeout=60):
                raise TimeoutError(f"Chromium did not answer {method}")
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def evaluate(self, expression: str) -> Any:
        reply = self.call(
            "Runtime.evaluate", session=self.session, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(reply["exceptionDetails"])
        return reply["result"].get("value")

    def load(self, path: Path, timeout: float = 30.0) -> Page:
        """Open ``path``, wait until its figures are drawn (or ``timeout``), return what the
        page did: console errors, requests, and the DOM facts the tests check."""
        while not self._events.empty():
            self._events.get_nowait()
        started = time.monotonic()
        self.call("Page.navigate", session=self.session, url=path.resolve().as_uri())
        events = self._until(lambda e: e.get("method") == "Page.loadEventFired", timeout)
        drawn = (
            "[...document.querySelectorAll('div.figure')]"
            ".every(d => d.querySelector('svg.main-svg'))"
        )
        while not self.evaluate(drawn) and time.monotonic() - started < timeout:
            time.sleep(0.1)
        seconds = time.monotonic() - started
        time.sleep(0.3)  # errors thrown by late callbacks (resize, fonts) arrive now
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return Page(self, events, seconds)

    def _until(self, done: Any, timeout: float) -> list[dict[str, Any]]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self._events.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            seen.append(event)
            if done(event):
                return seen
        raise TimeoutError(f"page did not load in {timeout} s")

    def screenshot(self, path: Path) -> Path:
        shot = self.call(
            "Page.captureScreenshot",
            session=self.session,
            format="png",
            captureBeyondViewport=True,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)


class Page:
    def __init__(self, browser: Browser, events: list[dict[str, Any]], seconds: float) -> None:
        self.browser = browser
        self.seconds = seconds
        self.errors = []
        self.requests = []
        for event in events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                thrown = details.get("exception", {}).get("description", "")
                self.errors.append(f"{details.get('text', '')} {thrown}"[:500])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                self.errors.append(json.dumps(params["args"])[:500])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                self.errors.append(params["entry"]["text"][:500])
            elif method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])

    def figures(self) -> tuple[int, int]:
        """(figure divs, figure divs with a drawn plotly svg)."""
        divs = self.browser.evaluate("document.querySelectorAll('div.figure').length")
        drawn = self.browser.evaluate(
            "[...document.querySelectorAll('div.figure')]"
            ".filter(d => d.querySelector('svg.main-svg')).length"
        )
        return int(divs), int(drawn)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    if executable is None:
        reason = (
            "Chromium not found (chromium, chromium-browser or google-chrome on PATH); "
            "install it with tests/system/chromium.sh (apt-get install chromium, as root)"
        )
        print(f"SKIPPED browser tests: {reason}")
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        b = Browser(executable, Path(profile))
        try:
            yield b
        finally:
            b.close()


def _check(page: Page, name: str) -> None:
    """No console error, nothing from the network, every figure drawn; a screenshot."""
    assert page.errors == [], page.errors
    remote = [u for u in page.requests if not u.startswith(("file:", "data:", "blob:", "about:"))]
    assert remote == [], f"the page fetched {remote}"
    divs, drawn = page.figures()
    assert drawn == divs, f"{divs - drawn} of {divs} figures not drawn"
    shot = page.browser.screenshot(ARTIFACTS / f"{name}.png")
    assert shot.stat().st_size > 10_000
    print(f"{name}: {divs} figures drawn in {page.seconds:.1f} s; screenshot {shot}")


def _benchmark_arrays(rng: np.random.Generator) -> dict[str, Any]:
    n = 12
    k = np.arange(1.0, 65.0)
    return {
        "confusion": rng.poisson(2, size=(n, n)) + np.diag(rng.poisson(30, size=n)),
        "labels": np.array([f"{c}{v}" for c in "bdg" for v in "aeiu"]),
        "samples": rng.lognormal(0, 0.5, size=(4, 64, 64)).astype(np.float32),
        "ps_k": k,
        "ps_generated": np.stack([k**-2 * (1 + 0.2 * rng.random(k.size)) for _ in range(4)]),
        "ps_heldout": k**-2,
        "signal": rng.normal(size=1200).astype(np.float32),
        "reference": np.array("ACGTTGCAACGTAGGCTA"),
        "decoded": np.array([0, 1, 2, 3, 3, 2, 1, 0, 1, 2, 3, 0, 2, 2, 1, 3, 0]),
    }


def test_the_checks_catch_a_broken_page(browser: Browser, tmp_path: Path) -> None:
    """The harness sees console errors, exceptions, network requests and empty figures."""
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        "<!DOCTYPE html><html><body><div class='figure'></div>"
        "<img src='http://192.0.2.1/x.png'>"
        "<script>console.error('logged'); undefined_function();</script></body></html>"
    )
    page = browser.load(page_file, timeout=5)
    assert any("logged" in e for e in page.errors)
    assert any("undefined_function" in e for e in page.errors)
    assert "http://192.0.2.1/x.png" in page.requests
    assert page.figures() == (1, 0)
    with pytest.raises(AssertionError):
        _check(page, "broken")


def test_campaign_report_in_chromium(browser: Browser, tmp_path: Path) -> None:
    """Every section and benchmark panel of a single-objective campaign renders."""
    run_dir = tmp_path / "run"
    path = run_dir / "trials/000007/artifacts.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, **_benchmark_arrays(np.random.default_rng(0)))
    out = tmp_path / "weather-search.html"
    (tmp_path / "weather-search-pareto.html").write_text("<!DOCTYPE html><title>p</title>")
    write_search_report(_single_study(artifacts=True), out, run_dir=run_dir)
    page = browser.load(out)
    _check(page, "campaign-report")
    assert page.figures()[0] >= 11  # 8 campaign figures + confusion, maps, spectra, squiggle
    assert browser.evaluate("document.title") == "Search report: weather-search"
    # The link to the Pareto report next to it resolves to that file.
    href = browser.evaluate("document.querySelector('p.links a').href")
    assert href == (tmp_path / "weather-search-pareto.html").resolve().as_uri()


def test_multi_objective_and_empty_reports_in_chromium(browser: Browser, tmp_path: Path) -> None:
    study = optuna.create_study(study_name="mo", directions=["maximize", "minimize"])
    study.set_user_attr("supervisor:objectives", ["score", "node_seconds"])
    study.add_trials(
        [
            _trial(
                i,
                TrialState.COMPLETE,
                {"lr": 10 ** (-4 + 0.2 * i), "units": 8 + i, "act": ["relu", "gelu"][i % 2]},
                [0.5 + 0.03 * i, 10.0 * (i % 5)],
                [0.2, 0.3 + i / 40],
            )
            for i in range(16)
        ]
    )
    page = browser.load(write_search_report(study, tmp_path / "mo.html"))
    _check(page, "multi-objective-report")
    assert browser.evaluate("!!document.querySelector('#pareto svg.main-svg')")

    empty = optuna.create_study(study_name="empty")
    page = browser.load(write_search_report(empty, tmp_path / "empty.html"))
    assert page.errors == [] and page.figures() == (0, 0)
    assert "No trial has started yet" in browser.evaluate("document.body.innerText")


def test_injected_scripts_do_not_run(browser: Browser, tmp_path: Path) -> None:
    """Script and event-handler injections in every text the report shows stay text."""
    hostile = " ".join(INJECTED)
    name = f"study {hostile}"
    param = f"p {INJECTED[0]}"
    dists = {
        param: CategoricalDistribution(["safe", *INJECTED]),
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
    }
    study = optuna.create_study(study_name=name, direction="minimize")
    study.set_user_attr("supervisor:objectives", [f"loss {INJECTED[1]}"])
    study.set_user_attr("supervisor:config", {"note": hostile})
    trials = [
        _trial(
            i,
            TrialState.COMPLETE,
            {param: INJECTED[i % 3], "lr": 10 ** (-3 + 0.3 * i)},
            [1.0 / (i + 1)],
            [1.0, 1.0 / (i + 1)],
            dists=dists,
            worker=f"tcp://{INJECTED[i % 3]}",
            hostname=INJECTED[(i + 1) % 3],
            artifacts="a.npz",
        )
        for i in range(6)
    ]
    trials.append(
        _trial(
            6,
            TrialState.FAIL,
            {param: INJECTED[1], "lr": 0.01},
            dists=dists,
            error=f"RuntimeError: {hostile}",
            error_type=INJECTED[0],
            failure="model",
            traceback=hostile,
        )
    )
    study.add_trials(trials)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    arrays = _benchmark_arrays(np.random.default_rng(1))
    np.savez(
        run_dir / "a.npz",
        confusion=np.eye(3, dtype=int) * 5 + 1,
        labels=np.array(INJECTED),
        signal=arrays["signal"],
        reference=np.array(INJECTED[1]),
        decoded=np.array("ACGT"),
    )
    out = write_search_report(
        study, tmp_path / "hostile.html", {hostile: hostile}, run_dir=run_dir
    )
    page = browser.load(out)
    _check(page, "injected-report")
    # The title is the escaped study name, untouched by any injected handler.
    title = browser.evaluate("document.title")
    assert title == f"Search report: {name}" and title != PWNED
    assert browser.evaluate("document.querySelectorAll('img, main svg[onload]').length") == 0
    code = "[...document.scripts].filter(s => s.type !== 'application/json')"
    assert browser.evaluate(code + ".filter(s => s.text.includes('pwned')).length") == 0
    text = browser.evaluate("document.body.innerText")
    assert INJECTED[0] in text and INJECTED[1] in text  # shown to the reader, as text


def test_pareto_report_in_chromium(browser: Browser, tmp_path: Path) -> None:
    """The Pareto report: 2-D and 3-D fronts, hypervolume, curves; a hostile name stays text."""
    from supervisor.report.pareto import write_pareto_report
    from tests.report.test_pareto import three_objective_study

    name = f"pareto {INJECTED[0]}"
    campaign = tmp_path / "campaign.html"
    campaign.write_text("<!DOCTYPE html><title>c</title>")
    study = three_objective_study(name)
    out = write_pareto_report(study, tmp_path / "p-pareto.html", campaign_report=campaign)
    page = browser.load(out)
    _check(page, "pareto-report")
    assert page.figures()[0] == 6  # 3 pairs, the 3-D front, hypervolume, learning curves
    assert browser.evaluate("document.title") == f"Pareto report: {name}"
    rows = browser.evaluate("document.querySelectorAll('table.pareto tbody tr').length")
    assert rows == len(study.best_trials)
    href = browser.evaluate("document.querySelector('p.links a').href")
    assert href == campaign.resolve().as_uri()


def _uq_members(kind: str, rng: np.random.Generator) -> list[Any]:
    """Three synthetic members of ``kind`` with labels the injection test can abuse."""
    from supervisor.ensemble.aggregate import Member

    label = "<script>window.__uq_pwned = 1</script>"
    n, members = 200, []
    y_reg, ref_hist = rng.normal(size=n), rng.poisson(50, 40)
    for i in range(3):
        if kind == "classification":
            y = np.arange(n) % 3
            probs = rng.dirichlet(np.ones(3), n)
            outputs = {"val": probs, "test": probs, "y_val": y, "y_test": y}
        elif kind == "regression":
            pred = np.c_[y_reg + rng.normal(size=n), np.full(n, 1.0 + i)]
            outputs = {"val": pred, "test": pred, "y_val": y_reg, "y_test": y_reg}
        else:  # generative
            k = np.arange(1.0, 17.0)
            outputs = {
                "k": k, "spectrum": k**-2 * (1 + 0.3 * rng.random(16)), "ref_spectrum": k**-2,
                "hist_edges": np.linspace(-1, 1, 41), "hist": rng.poisson(50, 40),
                "ref_hist": ref_hist,
            }  # fmt: skip
        members.append(Member(i, "s", f"{label} #{i}", 0.1 * i, outputs))
    return members


@pytest.mark.parametrize("kind", ["classification", "regression", "generative"])
def test_uq_report_in_chromium(browser: Browser, tmp_path: Path, kind: str) -> None:
    """Every figure of the UQ report draws; member labels stay text."""
    from supervisor.config.ensemble import EnsembleConfig
    from supervisor.ensemble.aggregate import evaluate
    from supervisor.ensemble.build import Built
    from supervisor.report.uq import write_uq_report

    members = _uq_members(kind, np.random.default_rng(1))
    ev = evaluate(kind, members, maximize=False)
    built = Built(EnsembleConfig(), "topk", ev, members, 1, 2, [], tmp_path / "e.json", None)
    out = write_uq_report(built, tmp_path / "x-uq.html", "<b>study</b>")
    page = browser.load(out)
    _check(page, f"uq-report-{kind}")
    assert page.figures()[0] >= 3
    assert browser.evaluate("typeof window.__uq_pwned") == "undefined"
    assert browser.evaluate("document.title") == "Ensemble report: <b>study</b>"


def test_label_markup_in_user_strings_shows_as_written(browser: Browser, tmp_path: Path) -> None:
    """plotly.js reads labels as HTML: a choice "<b>x</b>" was a bold x on the slice and
    contour axes, an objective "<i>loss</i>" an italic legend entry."""
    dists = {
        "act": CategoricalDistribution(["<b>x</b>", "<i>y</i>", "a & b"]),
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
    }
    study = optuna.create_study(study_name="tags", direction="minimize")
    study.set_user_attr("supervisor:objectives", ["<i>loss</i>"])
    choices = ["<b>x</b>", "<i>y</i>", "a & b"]
    study.add_trials(
        [
            _trial(i, TrialState.COMPLETE, {"act": choices[i % 3], "lr": 10 ** (-3 + 0.2 * i)},
                   [1 / (i + 1)], [1.0, 1 / (i + 1)], dists=dists)
            for i in range(9)
        ]
    )  # fmt: skip
    page = browser.load(write_search_report(study, tmp_path / "tags.html"))
    _check(page, "label-markup-report")
    ticks = browser.evaluate(
        "[...document.querySelectorAll('#slice .xtick text, #contour .xtick text')]"
        ".map(t => t.textContent)"
    )
    assert "'<b>x</b>'" in ticks and "'a & b'" in ticks  # the slice plot quotes choices
    assert "<i>y</i>" in ticks  # the contour plot does not
    bold = "document.querySelectorAll('#slice .xtick tspan, #contour .xtick tspan').length"
    assert browser.evaluate(bold) == 0  # no formatting made of the labels
    titles = browser.evaluate(
        "[...document.querySelectorAll('#history .legendtext, #history .ytitle')]"
        ".map(t => t.textContent)"
    )
    assert "<i>loss</i>" in titles


def test_a_diverged_trial_is_drawn_without_console_errors(
    browser: Browser, tmp_path: Path
) -> None:
    """With the y-axis on the ordinary values, plotly.js placed the markers of a value of
    1e37 with an SVG transform Chromium rejects: a console error per marker."""
    from tests.report.test_report_odd_values import _diverged_study

    page = browser.load(write_search_report(_diverged_study(), tmp_path / "div.html"))
    _check(page, "diverged-trial-report")


def main() -> None:
    """``python -m tests.report.test_browser REPORT.html``: how long the report takes to draw."""
    import sys

    executable = _chromium()
    if executable is None:
        raise SystemExit("no Chromium: run tests/system/chromium.sh")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        b = Browser(executable, Path(profile))
        try:
            for name in sys.argv[1:]:
                page = b.load(Path(name), timeout=600)
                divs, drawn = page.figures()
                print(f"{name}: {drawn} of {divs} figures drawn in {page.seconds:.1f} s")
                print(f"  console errors: {page.errors or 'none'}")
        finally:
            b.close()


if __name__ == "__main__":
    main()
