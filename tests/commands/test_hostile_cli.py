"""A hostile corpus for the command line: every command with bad flags, bad files around
it, damaged run records, addresses that are not what they claim, through the real entry
point (``supervisor.cli:main``, with its own stdout and stderr).

The cases are data: ``tests/bad_inputs/cli/<command>.yml`` (argv, files to set up, the
exit code and a fragment of the one-line message) and ``tests/bad_inputs/runfile/``
(damaged ``run.json`` files, each tried by every command that reads a run, and
``expected.yml``). Case tables end in ``.yml``; a ``.yaml`` under tests/bad_inputs/ is a
hostile input file itself (tests/config/test_bad_inputs.py). Each case runs
in a copy of one work directory holding good campaigns (set up once per module): a failed
command must print exactly one line on stderr, no traceback, within 60 s, and leave every
file of the copy (runs/, reports/, the space files) byte-identical.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import supervisor.cli

CORPUS = Path(__file__).parents[1] / "bad_inputs"
TOY = "tests.toy_benchmark:ToyBenchmark"
CLASSIFIER = "tests.toy_classifier:ToyClassifier"
SILENCE_LIMIT = 60  # seconds a refused command may take at most
# The commands that read a run record, as each damaged run.json is tried.
RUN_READERS: dict[str, list[str]] = {
    "status": ["status", "hostile"],
    "report": ["report", "hostile"],
    "export": ["export", "hostile"],
    "ensemble": ["ensemble", "hostile", "--workers", "1"],
    "chain": ["chain", "runs/hostile", "--count"],
    "rerun": ["rerun", "hostile", "0"],
    "stop": ["stop", "hostile"],
    "search": ["search", "toy.yaml", "--study", "hostile", "--dashboard", ":0"],
}
TEMPLATE_FILES = {
    "toy.yaml": f'benchmark: {{name: "{TOY}"}}\nobjectives: [loss]\n'
    "params:\n  x: {type: float, low: -4, high: 4}\n"
    "budget: {trials: 3, epochs: 1}\nsampler: random\nseed: 11\n",
    "clf_fail.yaml": f'benchmark: {{name: "{CLASSIFIER}"}}\nobjectives: [val_nll]\n'
    "params:\n  lr: {type: float, low: 0.01, high: 1.0, log: true}\n  mode: [raise]\n"
    "budget: {trials: 2, epochs: 1, fail_fast: 0}\nsampler: random\nseed: 5\n",
    "local.yaml": "kind: local\nworkers: 1\n",
    "slurm.yaml": "kind: slurm\ncores: 2\nmemory: 4GiB\nwalltime: '01:00:00'\n",
}


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    message: str
    exit: int = 2
    files: dict[str, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    symlinks: dict[str, str] = field(default_factory=dict)
    binary: dict[str, str] = field(default_factory=dict)  # file -> its bytes in hex
    absent: list[str] = field(default_factory=list)  # never printed (e.g. a password)
    fresh: bool = False  # also run in a fresh interpreter, as a user starts it


def _cli_cases() -> list[Case]:
    cases = []
    for path in sorted((CORPUS / "cli").glob("*.yml")):
        for entry in yaml.safe_load(path.read_text()):
            name = entry.pop("name")
            cases.append(Case(id=f"cli/{path.stem}/{name}", **entry))
    return cases


def _runfile_cases() -> list[Case]:
    """Each damaged run record (a file, or a setup) tried by every command reading runs."""
    expected = yaml.safe_load((CORPUS / "runfile" / "expected.yml").read_text())
    files = {p.stem for p in (CORPUS / "runfile").glob("*.json")}
    assert files <= set(expected), f"no expectation for {sorted(files - set(expected))}"
    cases = []
    for name, spec in sorted(expected.items()):
        keys = ("files", "dirs", "symlinks", "absent")
        setup: dict[str, Any] = {k: spec[k] for k in keys if k in spec}
        if name in files:
            record = (CORPUS / "runfile" / f"{name}.json").read_text(errors="surrogateescape")
            setup["files"] = {"runs/hostile/run.json": record}
        for command, argv in RUN_READERS.items():
            if command in spec.get("skip", []):
                continue
            fresh = command == "report" and spec.get("fresh", False)
            cases.append(
                Case(f"runfile/{name}/{command}", argv, spec["message"], fresh=fresh, **setup)
            )
    return cases


CASES = {case.id: case for case in _cli_cases() + _runfile_cases()}


# -- the world the cases run in ------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def addresses() -> Iterator[dict[str, str]]:
    """A web server (an address that is no Dask scheduler) and a port nobody listens on."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        free = closed.getsockname()[1]
    yield {"http": f"127.0.0.1:{server.server_address[1]}", "closed": f"127.0.0.1:{free}"}
    server.shutdown()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good campaigns every case starts from: ``toy`` (complete trials, a report) and
    ``clf_fail`` (an ensemble-capable benchmark whose every trial failed)."""
    work = tmp_path_factory.mktemp("template")
    for name, text in TEMPLATE_FILES.items():
        (work / name).write_text(text)
    code = (
        "import supervisor\n"
        "supervisor.search('toy.yaml', workers=1, progress='none', dashboard=':0')\n"
        "supervisor.search('clf_fail.yaml', workers=1, progress='none', dashboard=':0',"
        " report=False)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=work, check=True, timeout=300)
    assert (work / "runs/toy/run.json").is_file() and (work / "reports/toy.html").is_file()
    return work


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with a digest of what it is: files byte for byte."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = f"link -> {path.readlink()}"
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[key] = "directory" if path.is_dir() else "other"
    return found


def substitute(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def prepare(case: Case, template: Path, work: Path, values: dict[str, str]) -> list[str]:
    """A copy of the template with the case's files; the argv to run in it."""
    shutil.copytree(template, work, symlinks=True)
    values = {**values, "cwd": str(work)}
    for name in case.dirs:  # a directory where a file should be
        (work / name).unlink(missing_ok=True)
        (work / name).mkdir(parents=True)
    for name, text in case.files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(substitute(text, values).encode("utf-8", "surrogateescape"))
    for name, hexed in case.binary.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(bytes.fromhex(hexed))
    for name, target in case.symlinks.items():
        link = work / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(substitute(target, values))
    return [substitute(arg, values) for arg in case.argv]


# One interpreter imports the command once and, per case, copies the template, forks a
# child that runs the real entry point in the copy with its own stdout and stderr, compares
# the copy before and after, and removes it (a fresh interpreter per case would cost
# minutes on 2 cores; copies of every case at once, gigabytes).
RUNNER = r"""
import contextlib, io, json, shutil, sys, time
from pathlib import Path
import distributed, optuna, pandas, tests.toy_benchmark, tests.toy_classifier
import supervisor.cli, supervisor.api, supervisor.commands.search, supervisor.study.driver
from tests.commands.test_hostile_cli import CASES, compare, prepare, snapshot
from tests.config.cli_runner import run_forked

with contextlib.redirect_stdout(io.StringIO()):  # what typer loads on first use
    supervisor.cli.app(["search", "--help"], standalone_mode=False)
job = json.load(sys.stdin)
template, values, limit = Path(job["template"]), job["values"], job["limit"]
results = []
for case_id, work, out_dir in job["cases"]:
    argv = prepare(CASES[case_id], template, Path(work), values)
    before = snapshot(Path(work))
    started = time.monotonic()
    code = run_forked(work, argv, out_dir, limit)  # a command silent for longer fails
    seconds = time.monotonic() - started
    changed = compare(before, snapshot(Path(work)))
    shutil.rmtree(work)
    results.append([code, seconds, changed])
print(json.dumps(results))
"""


@dataclass
class Outcome:
    code: int
    seconds: float
    stdout: str
    stderr: str
    changed: list[str]


def compare(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@pytest.fixture(scope="module")
def outcomes(
    template: Path, addresses: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("cases")
    cases = []
    for number, case_id in enumerate(CASES):
        (root / f"{number:03d}.out").mkdir()
        cases.append((case_id, str(root / f"{number:03d}"), str(root / f"{number:03d}.out")))
    job = {"template": str(template), "values": addresses, "limit": SILENCE_LIMIT, "cases": cases}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        case_id: Outcome(
            code,
            seconds,
            (Path(out) / "stdout").read_text(errors="replace"),
            (Path(out) / "stderr").read_text(errors="replace"),
            changed,
        )
        for (case_id, _, out), (code, seconds, changed) in zip(
            cases, json.loads(done.stdout), strict=True
        )
    }


def check(case: Case, result: Outcome) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    assert result.code == case.exit, output[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and len(lines[0]) < 1000, lines[0]
    assert case.message in lines[0], lines[0]
    for secret in case.absent:
        assert secret not in output
    assert not result.changed, f"changed by a refused command: {result.changed}"
    assert result.seconds < SILENCE_LIMIT


def test_the_corpus_covers_every_command_with_150_cases() -> None:
    import typer.main

    group = typer.main.get_command(supervisor.cli.app)
    commands = set(getattr(group, "commands", {}))
    tried = {case.argv[0] for case in CASES.values()}
    assert commands <= tried, f"no hostile case for {sorted(commands - tried)}"
    assert len(CASES) >= 150


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_a_refused_command_says_one_line_and_changes_nothing(
    case_id: str, outcomes: dict[str, Outcome]
) -> None:
    check(CASES[case_id], outcomes[case_id])


@pytest.mark.parametrize("case_id", sorted(k for k, c in CASES.items() if c.fresh))
def test_in_a_fresh_interpreter(
    case_id: str, template: Path, addresses: dict[str, str], tmp_path: Path
) -> None:
    """A sample, as a user starts the command (``python -m supervisor.cli``)."""
    case = CASES[case_id]
    work = tmp_path / "work"
    argv = prepare(case, template, work, addresses)
    before = snapshot(work)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", *argv],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=SILENCE_LIMIT + 30,
    )
    result = Outcome(
        done.returncode,
        time.monotonic() - started,
        done.stdout,
        done.stderr,
        compare(before, snapshot(work)),
    )
    check(case, result)
