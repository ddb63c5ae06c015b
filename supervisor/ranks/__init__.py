"""Multi-rank trials: one trial trained data-parallel on K MPI ranks (mpi4py).

``run_ranked_trial(spec, ranks)`` (in ``launch``) is the entry point a worker calls;
``allreduce`` makes a compiled Keras model train data-parallel; ``run`` is one rank.
Importing this package imports neither MPI nor a framework.
"""

from supervisor.ranks.launch import cancel_ranked_trials, find_mpiexec, run_ranked_trial

__all__ = ["cancel_ranked_trials", "find_mpiexec", "run_ranked_trial"]
