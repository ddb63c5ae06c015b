"""A calibration written into a launcher profile (``supervisor calibrate --write``): its
``calibration:`` section, replacing an earlier one, the rest of the file kept as written."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

import supervisor.atomic as atomic

if TYPE_CHECKING:
    from supervisor.execution.calibrate import Calibration


def profile_block(cal: Calibration) -> str:
    """The ``calibration:`` section of a launcher profile, as commented YAML."""
    return (
        f"# Written by `supervisor calibrate {cal.benchmark}` on {cal.host}\n"
        f"# ({cal.cpu}, {cal.cores} cores): {cal.samples_per_s:g} samples/s in aggregate.\n"
        "calibration:\n"
        f"  benchmark: {cal.benchmark}\n"
        f"  threads_per_trial: {cal.threads_per_trial}  # cores given to each trial\n"
        f"  trials_per_node: {cal.trials_per_node}  # trials packed on one node\n"
        + (
            f"  gpus: {cal.gpus}  # the node's GPUs, the trials spread over them\n"
            if cal.gpus
            else ""
        )
    )


def profile_text(cal: Calibration, profile: Path) -> str:
    """A launcher profile with the calibration appended, replacing an earlier one; the
    rest of the file (and its comments) is kept as written. A new file is a local profile."""
    text = profile.read_text() if profile.exists() else "kind: local\n"
    body = "\n".join(_without_calibration(text.splitlines())).rstrip()
    return (body + "\n\n" if body else "") + profile_block(cal)


def write_into_profile(cal: Calibration, profile: Path, text: str | None = None) -> None:
    """Write ``text`` (by default ``profile_text``) over the profile."""
    text = profile_text(cal, profile) if text is None else text
    # Through a link: replacing the link itself left the profile it names (a site's, kept
    # in git) as it was, and the link a copy that no longer followed it.
    target = profile.resolve() if profile.is_symlink() else profile
    # The profile keeps its mode: one made 0600 (a prologue may export a token) became
    # world-readable when rewritten through a new file under the umask.
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    with atomic.replacing(target, mode=mode) as tmp:
        tmp.write_text(text)


def _without_calibration(lines: list[str]) -> list[str]:
    """``lines`` less an earlier ``calibration:`` section and the header this module
    wrote above it. Only the section's own (indented) lines go: a comment or blank line
    at column 0 after it belongs to what follows (a section of the user's comments was
    dropped with a calibration the user had moved up the file)."""
    kept: list[str] = []
    pending: list[str] = []  # column-0 comments and blank lines met inside the section
    inside = after_header = False
    for line in lines:
        if after_header and line.startswith("# ("):  # the header's second line
            after_header = False
            continue
        after_header = line.startswith("# Written by `supervisor calibrate")
        if after_header or line.startswith("calibration:"):
            inside, pending = line.startswith("calibration:"), []
            continue
        if inside and line[:1] in (" ", "\t"):  # the section's own line
            pending = []
            continue
        if inside and (not line.strip() or line.startswith("#")):
            pending.append(line)  # the section's, if an indented line follows
            continue
        if inside and kept and not kept[-1].strip():  # no double blank where it was
            pending = [p for p in pending if p.strip()]
        kept += pending
        pending, inside = [], False
        kept.append(line)
    return kept + pending
