"""CosmoGAN (Mustafa et al. 2017): a DCGAN for weak-lensing convergence maps. Imports
numpy only; Keras on workers."""

from benchmarks_sci.cosmogan.benchmark import CosmoGANBenchmark

__all__ = ["CosmoGANBenchmark"]
