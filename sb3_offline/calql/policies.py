"""Networks of Cal-QL: CQL's (SB3's ``SACPolicy``), with the sizes of Cal-QL's authors."""

from __future__ import annotations

from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.cql.policies import CQLPolicy

#: Hidden sizes in Cal-QL's authors' AntMaze script (``nakamotoo/Cal-QL``, ``scripts/run_antmaze.sh``:
#: ``--policy_arch=256-256 --qf_arch=256-256-256-256``)
CALQL_NET_ARCH: dict[str, list[int]] = {"pi": [256, 256], "qf": [256, 256, 256, 256]}


class CalQLPolicy(CQLPolicy):
    """:class:`~sb3_offline.cql.policies.CQLPolicy` with Cal-QL's default sizes: policy 2 x 256, critics 4 x 256."""

    default_net_arch: dict[str, list[int]] = CALQL_NET_ARCH


MlpPolicy = CalQLPolicy


MultiInputPolicy = multi_input_policy(CalQLPolicy, __name__)
