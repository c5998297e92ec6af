"""
Checkpoints of every algorithm (and FQE) saved by an earlier version of sb3-offline, kept to test that they
still load and predict the same (``tests/test_checkpoints.py``). Made once, on CPU, with small networks:
``python tests/data/checkpoints/make_checkpoints.py`` (from the repository root). Do not regenerate them to
make a failing test pass: that test is what keeps users' saved models loading.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from golden.cases import _fixed_states, box_env  # noqa: E402

ROOT = HERE.parents[2]
#: relative to the repository root, as the checkpoints record them (no machine's absolute path)
DATASET = "tests/golden/data/inverted_pendulum.npz"
FOLDER = Path("tests/data/checkpoints")

#: small networks, to keep the files small: per algorithm, the policy_kwargs that give them
SMALL: dict[str, dict] = {
    "bcq": {"net_arch": {"pi": [16, 16], "qf": [16, 16], "vae": [16, 16]}},
    "plas": {"net_arch": {"pi": [16, 16], "qf": [16, 16], "vae": [16, 16]}},
    "lapo": {"net_arch": {"pi": [16, 16], "qf": [16, 16], "vf": [16, 16], "vae": [16, 16]}},
    "iql": {"net_arch": [16, 16]},
}


def main() -> None:
    import sb3_offline
    from sb3_offline.algorithms import ALGOS
    from sb3_offline.ope import FQE

    os.chdir(ROOT)
    env = box_env()
    states = _fixed_states(env.observation_space)
    expected: dict[str, list[float]] = {}
    for name, cls in ALGOS.items():
        kwargs = {"vae_steps": 5} if name == "plas" else {}
        model = cls(
            "MlpPolicy",
            env,
            dataset=DATASET,
            seed=0,
            device="cpu",
            policy_kwargs=SMALL.get(name, {"net_arch": [16, 16]}),
            **kwargs,
        )
        model.learn(10)
        model.save(FOLDER / f"{name}.zip")
        actions, _ = model.predict(states, deterministic=True)
        expected[name] = np.asarray(actions, dtype=np.float64).reshape(-1).tolist()
    fqe = FQE(FOLDER / "bc.zip", dataset=DATASET, env=env, seed=0, device="cpu", policy_kwargs={"net_arch": [16, 16]})
    fqe.learn(10)
    fqe.save(FOLDER / "fqe.zip")
    values = fqe.predict_value(
        states, np.asarray(ALGOS["bc"].load(FOLDER / "bc.zip").predict(states, deterministic=True)[0])
    )
    expected["fqe"] = np.asarray(values, dtype=np.float64).reshape(-1).tolist()
    (HERE / "expected.json").write_text(
        json.dumps({"version": sb3_offline.__version__, "predictions": expected}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
