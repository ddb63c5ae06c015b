"""The science benchmarks: one package each, registered in supervisor.benchmarks.registry."""
