"""supervisor: hyper-parameter optimization and ensembles for scientific deep learning on HPC.

The public API, also what the ``supervisor`` command runs::

    import supervisor

    if __name__ == "__main__":  # in a script: Dask's worker processes import it again
        run = supervisor.search("search_spaces/weather.yaml", trials=12, workers=2)
        run.best.params         # the best configuration (an Optuna FrozenTrial)
        run.trials              # every trial as a pandas DataFrame
        run.report()            # the HTML reports, rewritten from storage
        supervisor.open_run("runs/weather-tc").status()

A search space is a YAML file, the same content as a dict, or an ``Experiment``.
Benchmarks implement ``supervisor.benchmarks.Benchmark``. Importing this package is
cheap: Optuna, Dask, pandas and the frameworks load when a function needs them.
"""

from supervisor.api import Run, open_run, search
from supervisor.errors import Interrupted, SpaceError, UserError

__version__ = "0.1.0"

__all__ = ["Interrupted", "Run", "SpaceError", "UserError", "__version__", "open_run", "search"]
