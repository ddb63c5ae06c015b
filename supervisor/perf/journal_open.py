"""What opening a long campaign's journal costs, replayed whole and from its snapshot.

    python -m supervisor.perf.scale --workers 200 --trials 20000 --mean 5 --storage /tmp/c.log
    python -m supervisor.perf.journal_open /tmp/c.log [--repeats 3]

Prints the CPU seconds of opening the journal file and its study, replayed whole and then
from the snapshot that ``status`` or a driver leaves after such an open
(``supervisor.study.journal_snapshot``), best of ``--repeats`` each. A snapshot there before is
put back afterwards.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def open_seconds(journal: Path) -> tuple[float, Any]:
    """CPU seconds to open the storage and its first study, and the storage."""
    import optuna

    from supervisor.study.storage import open_storage

    start = time.process_time()
    storage = open_storage(f"journal:{journal}", read_only=True)
    optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    return time.process_time() - start, storage


def main() -> None:
    from supervisor.study import journal_snapshot

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("journal", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    snapshot = journal_snapshot.path_of(str(args.journal))
    kept = snapshot.with_name(snapshot.name + ".kept")
    if snapshot.exists():
        snapshot.rename(kept)
    try:
        size = args.journal.stat().st_size / 1e6
        opened = [open_seconds(args.journal) for _ in range(args.repeats)]
        whole = min(seconds for seconds, _ in opened)
        opened[-1][1].save_snapshot()  # as `status` and a driver do after opening
        saved = snapshot.stat().st_size / 1e6 if snapshot.exists() else 0.0
        fast = min(open_seconds(args.journal)[0] for _ in range(args.repeats))
    finally:
        snapshot.unlink(missing_ok=True)
        if kept.exists():
            kept.rename(snapshot)
    print(f"journal {size:.1f} MB: opened whole {whole:.2f} s CPU")
    print(f"snapshot {saved:.1f} MB: opened from it {fast:.2f} s CPU ({whole / fast:.1f}x)")


if __name__ == "__main__":
    main()
