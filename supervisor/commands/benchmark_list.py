"""``supervisor benchmarks``: the registered benchmarks, their metrics and options."""

from __future__ import annotations

from supervisor.errors import UserError


def list_benchmarks() -> str:
    """Every registered benchmark, its metrics and options; a broken plug-in says why it
    cannot be imported without hiding the rest."""
    from supervisor.benchmarks import registry

    lines = []
    for name, target in sorted(registry.benchmarks().items()):
        try:
            cls = registry.load(target)
        except UserError as exc:
            lines.append(f"{name}  ({target})\n  not importable: {exc}")
            continue
        metrics = ", ".join(f"{m} ({d})" for m, d in cls.metrics.items())
        lines.append(f"{name}  ({target})\n  metrics: {metrics}")
        lines += [f"  option {k} = {opt.default!r}: {opt.help}" for k, opt in cls.options.items()]
    return "\n".join(lines)
