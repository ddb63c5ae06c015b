"""Multi-rank trials: one trial trained data-parallel on K MPI ranks (mpi4py).

``launch.run_ranked_trial(spec, ranks)`` is the entry point a worker calls;
``allreduce`` makes a compiled Keras model train data-parallel; ``run`` is one rank.
Importing this package imports neither MPI nor a framework.
"""
