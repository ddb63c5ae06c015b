"""ECoG consonant-vowel speech decoder (Livezey, Bouchard & Chang 2019). Imports numpy
only; Keras on workers, scipy in ``hierarchy`` functions."""

from benchmarks_sci.speech.benchmark import SpeechBenchmark

__all__ = ["SpeechBenchmark"]
