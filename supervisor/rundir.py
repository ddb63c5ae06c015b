"""The run directory of a campaign: where its embedded storage and records live.

``runs/<study>/`` holds ``journal.log`` (the default Optuna storage; a long one also
``journal.log.snapshot``, a cache of its replay: ``supervisor.study.journal_snapshot``) and
``run.json`` (how to find the study again: its name and storage URL), per-trial files under
``trials/`` and the epoch checkpoints of unfinished trials under ``checkpoints/``.
Reports go to ``reports/``.

The run directory is its owner's only (0700, ``make_private``): trial errors, artifacts and
batch logs may hold anything. Files that may hold a secret or leave it (run.json,
manifest.json, the journal and its snapshot, reports, exports) are 0600 on top of that.
``run.json`` never holds a storage password (``without_password``): a command that reopens
the storage gets it from the driver's own store (PGPASSWORD, ~/.pgpass) or a new --storage.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import supervisor.atomic as atomic
from supervisor.errors import UserError

RUN_FILE = "run.json"
SPACE_FILE = "space.yaml"  # the space of a run started from Python with a mapping
JOURNAL_FILE = "journal.log"
WORKERS_LOG = "workers.log"  # what a local cluster's workers and their trials print
TRIALS_DIR = "trials"
CHECKPOINTS_DIR = "checkpoints"
ARTIFACTS_FILE = "artifacts.npz"
MODEL_FILE = "model.npz"  # a kept trained model's arrays (keep_models)
OUTPUTS_FILE = "outputs.npz"  # an ensemble member's predictions (supervisor.ensemble)
ENSEMBLE_DIR = "ensemble"  # the run directory of the members trained for an ensemble
DRIVER_DIR = "driver"  # the driver jobs of `supervisor submit`: their script, logs, chain
CHAIN_FILE = "chain.json"  # in DRIVER_DIR: the chain's driver jobs, the latest last
# Query keys that carry a secret to the database driver: a key holding one of these
# (libpq's password and sslpassword, a token...).
SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token")
# A study name is a directory and a report's file name: no separators, no leading dot.
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
RECORD_KEYS: dict[str, tuple[type, ...]] = {
    "study": (str,),
    "storage": (str, type(None)),
    "space_file": (str,),
    "command": (str,),
}
MAX_RECORD_BYTES = 1_000_000
# Database servers named by another user's run record that this user accepts to connect
# to (with their own credentials): URLs separated by spaces (passwords ignored).
TRUST_ENV = "SUPERVISOR_TRUSTED_STORAGE"


@dataclass
class RunRecord:
    study: str
    storage: str | None  # None: the journal file in the run directory
    space_file: str
    command: str

    def storage_url(self, run_dir: Path) -> str:
        if self.storage is not None:
            check_trusted(run_dir, self.storage)
        return self.storage or journal_url(run_dir)


def journal_url(run_dir: Path) -> str:
    """The URL of the run's journal. Every command names it before it writes or starts a
    cluster: a journal that is there but no file is refused here, not half-way."""
    journal = run_dir / JOURNAL_FILE
    if journal.is_symlink():  # it would write the campaign wherever the link points
        raise UserError(f"{journal}: a symbolic link, not a storage journal")
    if journal.exists() and not journal.is_file():
        what = "a directory" if journal.is_dir() else "not a regular file"
        raise UserError(f"{journal}: {what}, not a storage journal")
    return f"journal:{journal.resolve()}"


def check_owned(run_dir: Path) -> None:
    """A run directory, and its journal, must be this user's own: one that another user
    made (a world-writable runs folder) could be read and written by them, and a
    symbolic link could send the campaign's files anywhere."""
    for path in (run_dir, run_dir / JOURNAL_FILE):
        try:
            found = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(found.st_mode):
            raise UserError(f"{path}: a symbolic link; a run's files must be its own")
        if found.st_uid != os.getuid():
            raise UserError(
                f"{path}: owned by another user (uid {found.st_uid}); a run is its owner's"
                " only: choose another --runs-dir or --study"
            )


def server_storage(url: str) -> bool:
    """Whether a storage URL names a database server (not a journal or an SQLite file)."""
    if url.startswith("journal:") or "://" not in url:
        return False
    return url.partition("://")[0].split("+")[0].lower() != "sqlite"


def foreign_owner(run_dir: Path) -> tuple[Path, int] | None:
    """The run directory or record that another user owns, and their uid; None if both
    are this user's (or gone: the record's reader says so)."""
    for path in (run_dir, run_dir / RUN_FILE):
        with contextlib.suppress(OSError):
            owner = path.lstat().st_uid
            if owner != os.getuid():
                return path, owner
    return None


def check_trusted(run_dir: Path, url: str) -> None:
    """A run record another user wrote may name any server: connecting would hand it this
    user's password (PGPASSWORD, ~/.pgpass, libpq's service file) or talk to a server of
    theirs. Such a server is opened only when the user named it (``TRUST_ENV``)."""
    found = foreign_owner(run_dir) if server_storage(url) else None
    if found is None:
        return
    path, owner = found
    if without_password(url) in {
        without_password(u) for u in os.environ.get(TRUST_ENV, "").split()
    }:
        return
    shown = hide_secrets(url) if may_hold_password(url) else url
    raise UserError(
        f"{path}: written by another user (uid {owner}); its storage {shown} is a database"
        f" server, not connected to with your credentials unless you name it:"
        f" {TRUST_ENV}='{without_password(url)}'"
    )


def trial_dir(run_dir: Path, number: int) -> Path:
    """Where one trial's files live (artifacts, checkpoints): ``trials/000042/``."""
    return run_dir / TRIALS_DIR / f"{number:06d}"


def checkpoint_dir(run_dir: Path, key: int) -> Path:
    """Epoch checkpoints of a trial and its re-runs: ``checkpoints/000042/``, keyed by the
    first trial of the retry chain so that every attempt finds the same directory."""
    return run_dir / CHECKPOINTS_DIR / f"{key:06d}"


def make_private(run_dir: Path, *, journal: bool) -> None:
    """Create the run directory for its owner only (0700, also when it existed wider), and
    with ``journal`` the journal file 0600 before Optuna creates it with the umask's mode."""
    atomic.folder(run_dir.parent)  # the runs folder: never writable by others
    run_dir.mkdir(mode=0o700, exist_ok=True)
    # Checked again now that it exists: checked before a cluster started, it could be
    # made meanwhile by another user of a shared runs folder (a link to a folder of theirs).
    check_owned(run_dir)
    with contextlib.suppress(PermissionError):  # another user's directory: theirs to set
        run_dir.chmod(0o700)
    if journal:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
        fd = os.open(run_dir / JOURNAL_FILE, flags, 0o600)
        try:
            with contextlib.suppress(PermissionError):
                os.fchmod(fd, 0o600)  # a journal of a run made before it was private
        finally:
            os.close(fd)


# A value assigned in a job script (export HF_TOKEN=..., #SBATCH --export=ALL,KEY=...).
ASSIGNED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s,;]*)")
# Environment names that carry a secret: the URL keys' words, and API keys (not "key"
# alone: SSH_KEY_PATH, a file's name, is none).
ENV_SECRET_WORDS = (*SECRET_WORDS, "api_key", "apikey", "access_key", "private_key", "credential")


def hide_assigned_secrets(text: str) -> str:
    """``text`` (a job script) with each value assigned to a name that carries a secret
    (``export HF_TOKEN=hf_...``, a launcher profile's prologue) replaced by ***."""

    def masked(found: re.Match[str]) -> str:
        secret = any(word in found[1].lower() for word in ENV_SECRET_WORDS)
        return f"{found[1]}=***" if secret else found[0]

    return ASSIGNED.sub(masked, text)


def secret_key(name: str) -> bool:
    """Whether a URL's query key carries a secret (``password``, ``sslpassword``...)."""
    return any(word in name.lower() for word in SECRET_WORDS)


def may_hold_password(url: str) -> bool:
    """Whether a URL has a user part or a secret query key (others are left as typed)."""
    if "://" not in url:
        return False
    keys = [item.partition("=")[0] for item in url.partition("?")[2].split("&")]
    return "@" in url or any(secret_key(k) for k in keys)


def hide_secrets(url: str, mask: str | None = "***") -> str:
    """``url`` with its password and secret query values replaced by ``mask``, or removed
    (None). Read as text, not parsed: a URL a parser refuses (a port that is no number,
    several hosts, an ``@`` in the password) must not come out whole. The password is
    what lies between the user's ``:`` and the last ``@`` (hosts hold none)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    head, query = _head_and_query(rest)
    at = head.rfind("@")
    if at >= 0:
        user, colon, _ = head[:at].partition(":")
        if colon:
            head = f"{user}{'' if mask is None else ':' + mask}@{head[at + 1 :]}"
    kept = []
    for item in query.split("&") if query else []:
        key = item.partition("=")[0]
        if not secret_key(key):
            kept.append(item)
        elif mask is not None:
            kept.append(f"{key}={mask}")
    return f"{scheme}://{head}" + ("?" + "&".join(kept) if kept else "")


def _head_and_query(rest: str) -> tuple[str, str]:
    """A URL after its ``scheme://``, split at the ``?`` of its query. A password may hold
    a ``?`` (SQLAlchemy reads it from ``user:`` to the next ``@``): split there, the
    query began inside the password, which came out whole in run.json and every message."""
    head, _, query = rest.partition("?")
    colon = rest.find(":")
    if colon < 0 or "/" in rest[:colon]:  # no user:password part, as SQLAlchemy reads it
        return head, query
    at = rest.find("@", colon)
    if at < 0 or "?" not in rest[:at]:
        return head, query
    host, _, query = rest[at:].partition("?")
    return rest[:at] + host, query


def secrets_in(url: str) -> list[str]:
    """The secret strings of ``url`` (its password, its secret query values, and the parts
    of a password around an ``@``): a driver's message may quote any of them."""
    from urllib.parse import unquote

    _, sep, rest = url.partition("://")
    head, query = _head_and_query(rest)
    found = []
    if sep and "@" in head:
        password = head[: head.rfind("@")].partition(":")[2]
        found += [password, *password.split("@")]
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        if secret_key(key):
            found.append(value)
    found += [unquote(s) for s in found]  # as the driver decoded it
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def hide_secrets_in(text: str, url: str) -> str:
    """``text`` (an error's message) with each secret of storage ``url`` in it masked."""
    for secret in secrets_in(url):
        text = text.replace(secret, "***")
    return text


def without_password(url: str | None) -> str | None:
    """The storage URL with its password removed (not masked: the URL still works where
    the driver finds the password itself, as libpq does in PGPASSWORD or ~/.pgpass)."""
    if url is None or not may_hold_password(url):
        return url
    return hide_secrets(url, mask=None)


def absolute_storage(url: str | None) -> str | None:
    """A SQLite or journal URL with its file's absolute path: a relative one in
    ``run.json`` named another file (or none) for a command typed in another folder."""
    if url is None:
        return None
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix):
            path, sep, query = url[len(prefix) :].partition("?")
            if path and path != ":memory:" and not os.path.isabs(path):
                return f"{prefix}{os.path.abspath(path)}{sep}{query}"
    return url


def write_record(run_dir: Path, record: RunRecord) -> None:
    # No password in the file, whoever calls: it is read back by every later command.
    # A file's path is kept absolute, so that any folder's command finds the same file.
    kept = replace(record, storage=without_password(absolute_storage(record.storage)))
    atomic.write(run_dir / RUN_FILE, json.dumps(asdict(kept), indent=2) + "\n", mode=0o600)


def resolve(run: str, runs_root: Path = Path("runs")) -> tuple[Path, RunRecord]:
    """A run given as a directory or as a study name under ``runs_root``."""
    if not run.strip():
        raise UserError("RUN '': expected a run directory (runs/<study>) or a study name")
    for candidate in (Path(run), runs_root / run):
        record_path = candidate / RUN_FILE
        if record_path.is_file() or record_path.is_symlink():
            return candidate, read_record_file(record_path)
        if record_path.exists():
            raise UserError(f"{record_path}: not a file (a run record is a JSON file)")
    raise UserError(
        f"{run}: no run found (expected a run directory with {RUN_FILE}, or a study name"
        f" under {runs_root}/)"
    )


def read_record_file(path: Path) -> RunRecord:
    """``run.json`` checked field by field: every later command trusts its study name
    (reports are named after it) and its storage URL."""
    if path.is_symlink():  # someone else's file, or a loop: never followed
        raise UserError(f"{path}: a symbolic link; a run record must be a plain file")
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise UserError(f"{path}: {path.stat().st_size} bytes; a run record is a few hundred")
        data: Any = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_no_twice)
    except UserError:  # too big: said already (a UserError is a ValueError)
        raise
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte at offset {exc.start})") from None
    except _Twice as exc:
        raise UserError(f"{path}: {str(exc.args[0])[:80]!r}: given twice") from None
    except (ValueError, RecursionError) as exc:  # RecursionError: nested beyond reason
        detail = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise UserError(f"{path}: not valid JSON ({detail})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object of {', '.join(RECORD_KEYS)}")
    for key in data:
        if key not in RECORD_KEYS:
            raise UserError(f"{path}: {str(key)[:80]!r}: unknown key of a run record")
    for key, types in RECORD_KEYS.items():
        if key not in data:
            raise UserError(f"{path}: missing {key!r}")
        if not isinstance(data[key], types):
            wanted = " or ".join("null" if t is type(None) else "a string" for t in types)
            raise UserError(f"{path}: {key}: expected {wanted}, got {_shown(data[key])}")
    if not STUDY_NAME.fullmatch(data["study"]):
        raise UserError(
            f"{path}: study: expected a name of letters, digits, '_', '.', '-' (at most 128),"
            f" got {_shown(data['study'])}"
        )
    for key in ("storage", "space_file", "command"):
        if isinstance(data[key], str) and ("\x00" in data[key] or not data[key].strip()):
            raise UserError(f"{path}: {key}: expected a non-empty string without NUL")
    return RunRecord(**data)


class _Twice(Exception):
    """A key given twice in a JSON object (json keeps the last one in silence)."""


def _no_twice(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Twice(key)
        found[key] = value
    return found


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def read_record(run_dir: Path) -> RunRecord:
    """The record of the run in ``run_dir``."""
    return resolve(str(run_dir), run_dir.parent)[1]
