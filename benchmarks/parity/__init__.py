"""
Update-level parity with the authors' code: ``python -m benchmarks.parity ALGO --reference PATH``.

Each module ``benchmarks/parity/<algo>.py`` has ``run(reference, updates=10, seed=0, **options) -> list[ParityRow]``:
it loads the reference implementation from a local checkout (never copied into this repository), builds both with
the same weights, feeds both the same batches and random draws, runs ``updates`` updates through each side's own
update code and compares every loss, gradient and parameter. The shared harness is :mod:`benchmarks.parity.core`.
"""
