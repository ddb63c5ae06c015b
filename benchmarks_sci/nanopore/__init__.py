"""Nanopore basecaller: CNN + BiLSTM + CTC (Chiron). Imports numpy only; Keras on workers."""

from benchmarks_sci.nanopore.benchmark import NanoporeBenchmark

__all__ = ["NanoporeBenchmark"]
