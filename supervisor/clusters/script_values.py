"""What a value may hold to go into a batch job script unchanged.

Profile values and submit flags are written into job scripts: directives (``#SBATCH
--partition=...``), the worker's command line, prologue lines. A newline there starts a
directive or a command of its own (``queue: "gpu\\n#SBATCH --uid=0"``), and a space or a
``;`` splits a directive or runs a command. These rules are shared by the profile parser
(``supervisor.clusters.profile``), the worker jobs (``supervisor.clusters.jobqueue``) and
the driver's job chain (``supervisor.commands.submit``).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

# A value of a job script stays on its line: no newline, no other control character.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A plain shell word: left as it is, a $VAR or ${VAR} of the job's environment included.
SHELL_WORD = re.compile(r"(?:[\w./~:@%+=,-]|\$[A-Za-z_]\w*|\$\{[A-Za-z_]\w*\})+", re.ASCII)
# Values written into a directive as one word (queue, account...) or as a path.
NAME = re.compile(r"[\w.@%+,:=-]+", re.ASCII)
WALLTIME = re.compile(r"[0-9:-]+")
NOT_IN_A_PATH = re.compile(r"[\s'\"#\\]")
# Each scheduler's walltime syntax, for the message of one it cannot read.
WALLTIME_FORMS = {"slurm": "[D-]HH:MM:SS", "lsf": "[HH:]MM, no seconds (bsub -W)"}


def control_character(text: str) -> str | None:
    """The first control character of ``text`` as its code point (U+000A), or None."""
    found = CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def texts_in(value: Any) -> list[str]:
    """Every string in ``value`` (lists and mappings, keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in texts_in(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*texts_in(k), *texts_in(v))]
    return []


def shell_word(text: str) -> str:
    """``text`` as one word of a shell command line: as it is when plain (``$TMPDIR``, as
    the profiles suggest, stays the job's variable), else quoted."""
    return text if SHELL_WORD.fullmatch(text) else shlex.quote(text)


def unreadable_walltime(value: Any, kind: str, seconds: float | None = None) -> str:
    """The message for a walltime ``kind``'s scheduler would not read (or of 0 s)."""
    if seconds is not None:
        return f"cannot read walltime {value!r} for {kind}: a job needs more than 0 s"
    form = WALLTIME_FORMS.get(kind, "[[HH:]MM:]SS")
    return f"cannot read walltime {value!r} for {kind}: expected {form}, quoted"


# The directives that make a job an array (several tasks, one script): every task would
# start the workers of one Dask job, of the same names, and the scheduler keeps one.
ARRAY_FLAGS = {"slurm": ("--array", "-a"), "pbs": ("-J", "-t"), "sge": ("-t",)}


def array_directive(kind: str, directives: Any) -> str | None:
    """The directive of ``directives`` (a profile's job_extra_directives) that asks for a
    job array, or None."""
    if not isinstance(directives, list):
        return None
    for directive in directives:
        words = str(directive).split()
        if not words:
            continue
        first = words[0]
        for flag in ARRAY_FLAGS.get(kind, ()):
            short = not flag.startswith("--")
            if first == flag or first.startswith(f"{flag}=") or (short and first.startswith(flag)):
                return str(directive)
        if kind == "lsf" and first == "-J" and "[" in directive:  # bsub -J "name[1-4]"
            return str(directive)
    return None
