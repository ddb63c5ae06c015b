"""Extreme-weather classifier (Liu et al. 2016). Imports numpy only; Keras on workers."""

from benchmarks_sci.weather.benchmark import WeatherBenchmark

__all__ = ["WeatherBenchmark"]
