"""`make bench`: Hotline measured against the original design, written to BENCHMARKS.md.

Every part reports; none fails the build on a slow machine. `python -m benchmarks.run --quick`
is a fast smoke run. stdlib only (plus the project's own code)."""
