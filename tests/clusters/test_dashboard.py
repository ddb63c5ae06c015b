"""Live views of a campaign: the Dask dashboard while it runs, and optuna-dashboard on our
journal storage."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import pytest

import supervisor.rundir as rundir
from supervisor.clusters.launch import open_cluster
from supervisor.config import space
from supervisor.study.driver import Driver
from supervisor.study.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
TOY = "tests.toy_benchmark:ToyBenchmark"


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode("utf-8", "replace")


def test_dask_dashboard_serves_status_during_a_campaign(tmp_path: Path) -> None:
    """The dashboard of the campaign's cluster answers while trials run, and the tasks
    it shows are named after their trials."""
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'benchmark: {{name: "{TOY}", options: {{delay: 0.4}}}}\n'
        "objectives: [loss]\nparams:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 4, epochs: 3}\nsampler: random\nseed: 3\n"
    )
    exp = space.load(path)
    study = optuna.create_study(study_name=exp.study_name, direction="minimize")
    with open_cluster(workers=1, threads=1, scheduler=None, dashboard="127.0.0.1:0") as handle:
        link = handle.dashboard
        assert link and link.startswith("http://127.0.0.1:") and not link.endswith(":0/status")
        base = link.rsplit("/", 1)[0]
        driver = Driver(exp, study, handle.client, slots=1, prefetch=0)
        result: dict[str, Any] = {}
        runner = threading.Thread(target=lambda: result.update(summary=driver.run()))
        runner.start()
        try:
            key = _running_trial_key(handle.client)
            # The task's own page on the dashboard, under the trial's key: asked first, as
            # it answers only while the trial runs (1.2 s; then 404), and the status page's
            # first render took 0.3 s of them on a shared machine.
            status, page = _get(f"{base}/info/task/{urllib.parse.quote(key, safe='')}.html")
            assert status == 200 and key in page
            status, page = _get(f"{base}/status")
            assert status == 200 and "bokeh" in page.lower()
        finally:
            runner.join(timeout=60)
    assert result["summary"].finished == 4


def _running_trial_key(client: Any, timeout: float = 60.0) -> str:
    """The key of a trial task the scheduler is processing, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processing = client.processing()
        keys = [str(k) for ks in processing.values() for k in ks]
        trials = [k for k in keys if k.startswith("trial-")]
        if trials:
            number = trials[0].split("-")[1]
            assert number.isdigit(), trials[0]  # trial-<number>-<driver>
            return trials[0]
        time.sleep(0.05)
    raise TimeoutError("no trial task started")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def dashboard_of(tmp_path: Path) -> Iterator[Any]:
    """optuna-dashboard's WSGI app on our storage, served on a free loopback port."""
    pytest.importorskip("optuna_dashboard", reason="pip install optuna-dashboard (dev extra)")
    from optuna_dashboard import wsgi

    servers = []

    def serve(storage: Any) -> str:
        server = make_server("127.0.0.1", 0, wsgi(storage), handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_optuna_dashboard_reads_our_journal(tmp_path: Path, dashboard_of: Any) -> None:
    from supervisor.perf.report_scale import STUDY, make_campaign

    run_dir = tmp_path / "runs" / STUDY
    make_campaign(run_dir, 40)
    url = dashboard_of(open_storage(rundir.journal_url(run_dir)))

    status, body = _get(f"{url}/api/studies")
    assert status == 200
    (summary,) = json.loads(body)["study_summaries"]
    assert summary["study_name"] == STUDY
    assert summary["directions"] == ["maximize"]

    status, body = _get(f"{url}/api/studies/{summary['study_id']}?after=0")
    detail = json.loads(body)
    trials = {t["number"]: t for t in detail["trials"]}
    ours = optuna.load_study(study_name=STUDY, storage=open_storage(rundir.journal_url(run_dir)))
    assert len(trials) == len(ours.trials) == 40
    best = ours.best_trial
    shown = trials[best.number]
    assert shown["state"] == "Complete" and shown["values"] == pytest.approx(best.values)
    assert {p["name"] for p in shown["params"]} == set(best.params)
    attrs = {a["key"]: a["value"] for a in shown["user_attrs"]}
    assert attrs["worker"] == best.user_attrs["worker"]
    assert attrs["artifacts"] == best.user_attrs["artifacts"]
    # Nested attributes (the per-epoch history) arrive as JSON text (it cuts long ones).
    assert attrs["history"].startswith('[{"epoch": 0.0, "val_accuracy": ')
    assert len(shown["intermediate_values"]) == 20 and detail["has_intermediate_values"]


def _listening(port: int) -> set[str]:
    """The local addresses listening on ``port`` (Linux /proc/net/tcp and tcp6, hex)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.rpartition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_a_dashboard_without_a_host_listens_on_loopback_only(tmp_path: Path) -> None:
    """``--dashboard :0`` (the form the error message suggests) bound every interface while
    the link printed said 127.0.0.1."""
    with open_cluster(workers=1, threads=1, scheduler=None, dashboard=":0") as handle:
        link = handle.dashboard
        assert link and link.startswith("http://127.0.0.1:")
        port = int(link.rsplit(":", 1)[1].split("/")[0])
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and nothing else


def test_the_tunnel_printed_reaches_this_campaigns_dashboard_when_the_port_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another dashboard holds the port asked for (8787 on a shared login node): Dask takes
    another, and the README's ``ssh -L 8787:…`` opened the other user's campaign. The
    line printed under the link names the port this one got, and this host."""
    import socket

    from supervisor.clusters.addresses import tunnel

    monkeypatch.setattr(socket, "gethostname", lambda: "login2")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = taken.getsockname()[1]
        with open_cluster(
            workers=1, threads=1, scheduler=None, dashboard=f"127.0.0.1:{held}"
        ) as handle:
            link = handle.dashboard
            assert link is not None
            port = int(link.rsplit(":", 1)[1].split("/")[0])
            assert port != held
            assert tunnel(link) == (
                f"from another machine: ssh -L {port}:127.0.0.1:{port} login2,"
                f" then open http://127.0.0.1:{port}/status"
            )
            status, page = _get(link)
            assert status == 200 and "bokeh" in page.lower()
    assert tunnel("http://127.0.0.1:8787/status (on the node of MPI rank 0)") is None
    assert tunnel("http://10.1.2.3:8787/status") is None
