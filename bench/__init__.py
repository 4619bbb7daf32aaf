"""Benchmarks: ``make bench`` (``python -m bench``). Every figure is reported as a ratio against a
baseline measured in the same run, and the raw numbers go to ``bench/results/*.json``."""
