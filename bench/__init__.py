"""Benchmarks of the operator against bare pysui and the daemon's pattern (`make bench`)."""
