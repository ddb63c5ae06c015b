"""``supervisor export RUN``: every trial to CSV or Parquet, its manifest beside it."""

from __future__ import annotations

import json
from pathlib import Path

import supervisor.atomic as atomic
from supervisor.commands.preflight import output_file, run_files
from supervisor.errors import UserError

FORMATS = ("csv", "parquet")


def export(run: str, output: Path | None, fmt: str | None, runs_dir: Path) -> list[Path]:
    """Write the trials table (and the run's manifest beside it); the paths written.
    Both paths are checked before either is written. The format is ``fmt``, else the
    output's suffix, else csv."""
    from supervisor.api import open_run
    from supervisor.study.export import write_table

    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"--format: expected csv or parquet, got {fmt!r}")
    suffix = output.suffix[1:].lower() if output is not None else ""
    if fmt is not None and suffix in FORMATS and suffix != fmt:
        raise UserError(f"--output {output}: a {suffix} file name, but --format {fmt}")
    # -o t.parquet alone was refused as "but --format csv", a flag nobody gave
    fmt = fmt or (suffix if suffix in FORMATS else "csv")
    opened = open_run(run, runs_dir=runs_dir)
    out = output or opened.run_dir / f"trials.{fmt}"
    own = run_files(opened.run_dir, opened.record)
    output_file(out, "--output", opened.run_dir, own)  # first: '' or / names no file
    beside = out.with_name(f"{out.stem}.manifest.json")
    output_file(beside, "--output", opened.run_dir, own)
    if output is not None and suffix not in FORMATS:  # -o x.txt held CSV
        raise UserError(f"--output {output}: a trials table ends in .csv or .parquet")
    manifest = opened.manifest  # where the numbers came from travels with them
    written = [write_table(opened.study, out, fmt)]
    if manifest is not None:
        atomic.write(beside, json.dumps(manifest, indent=2) + "\n", mode=0o600)
        written.append(beside)
    return written
