"""
The same algorithms on D4RL-style datasets made locally: ``medium``, ``medium-replay`` and
``medium-expert`` (Fu et al. 2020), normalized scores (0 = random, 100 = expert).

    # D4RL's budgets (GPU machine; hours): 1M transitions, 1M-step expert, 300k gradient steps
    python -m benchmarks.d4rl_style --envs Hopper-v5 HalfCheetah-v5 Walker2d-v5 --transitions 1000000 --steps 300000
    # a CPU-sized run
    python -m benchmarks.d4rl_style --envs Pendulum-v1 --transitions 10000 --steps 5000 --seeds 0 1 2 --small-nets

The "medium" policy is trained until its return reaches a third of the expert's normalized return
(the expert is trained first and cached); "medium-replay" is its replay buffer up to that point.
Arguments, outputs and resuming are those of ``benchmarks/batch_settings.py``, including ``--d3rlpy``
(rows ``d3rlpy-<algo>`` for BCQ, AWAC, PLAS, IQL, TD3+BC, CQL, Cal-QL: d3rlpy's algorithms with our hyperparameters, see
``benchmarks/d3rlpy_compat.py``; d3rlpy must be importable, it is no dependency of sb3-offline):

    python -m benchmarks.d4rl_style --envs Pendulum-v1 --transitions 10000 --steps 5000 --small-nets --d3rlpy
"""

from __future__ import annotations

from benchmarks.batch_settings import main

if __name__ == "__main__":
    main(
        settings=("medium", "medium-replay", "medium-expert"),
        envs=("Hopper-v5",),
        description=__doc__ or "",
        output="results/d4rl_style",
    )
