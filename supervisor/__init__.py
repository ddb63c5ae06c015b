"""supervisor: hyper-parameter optimization and ensembles for scientific deep learning on HPC."""

__version__ = "0.1.0"
