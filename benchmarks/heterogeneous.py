"""
Heterogeneous data, LAPO's claim (Chen et al., NeurIPS 2022, Sec. 5): on datasets that mix behaviours of very
different quality, a policy over the latent space of a CVAE of the data (LAPO) keeps to the good behaviour where
a unimodal policy averages the modes. Two such datasets, made locally:

- ``medium-expert``: D4RL's, half rollouts of the medium policy, half of the expert;
- ``random-expert``: the ``random`` and ``expert`` datasets concatenated (``batch_settings.MIXTURES``).

    # what RESULTS.md reports on 2 CPU cores
    python -m benchmarks.heterogeneous --envs Pendulum-v1 --transitions 10000 --steps 5000 --seeds 0 1 2 \\
        --small-nets --algos bc bcq awac plas lapo iql td3bc

Arguments, outputs and resuming are those of ``benchmarks/batch_settings.py`` (including ``--d3rlpy``).
"""

from __future__ import annotations

from benchmarks.batch_settings import main

if __name__ == "__main__":
    main(
        settings=("medium-expert", "random-expert"),
        envs=("Pendulum-v1",),
        description=__doc__ or "",
        output="results/heterogeneous",
    )
