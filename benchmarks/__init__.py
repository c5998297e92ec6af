"""
Benchmarks of sb3-offline: scripts that remake the tables of RESULTS.md, run from the repository root as
``python -m benchmarks.<name> ...`` (``python -m benchmarks.batch_settings --help``). Nothing here is part of the
installed package or a test; variants of the library's algorithms used only by benchmarks live in
:mod:`benchmarks.variants` and :mod:`benchmarks.d3rlpy_variants`.
"""
