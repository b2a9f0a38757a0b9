"""Benchmark: what the gateway costs per application, against the bare fan-out floor."""
