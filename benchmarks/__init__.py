"""Speed, memory and stability measurements: python -m benchmarks.NAME from the repository root."""
