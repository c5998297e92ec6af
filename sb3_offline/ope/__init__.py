"""
Judging a policy without its environment: held-out episodes, Fitted Q Evaluation, offline metrics as SB3
callbacks, and model selection from data alone.

- :func:`split_episodes`: a dataset split by whole episodes into training and held-out parts, written as
  dataset files or local Minari ids (``sb3-offline train --validation-fraction 0.1``);
- :class:`FQE`: Fitted Q Evaluation of any of our models, any SB3 model or a function obs -> action;
  ``estimate()`` gives the policy's value with a bootstrap interval over episodes;
- :mod:`~sb3_offline.ope.metrics` and :class:`OfflineEvalCallback`: TD error, initial-state value, average value,
  discounted sum of advantages, action difference and soft off-policy classification on held-out episodes,
  logged during ``learn``, with ``best_model`` saved by one of them;
- :func:`load_model`: an SB3 checkpoint of any known algorithm, without knowing which;
- :mod:`~sb3_offline.ope.report`: the model-selection report of ``sb3-offline ope``.
"""

from sb3_offline.ope.callbacks import OfflineEvalCallback
from sb3_offline.ope.estimate import PolicyValueEstimate, bootstrap_interval, undiscounted_from_discounted
from sb3_offline.ope.evaluation_policy import EvaluationPolicy, as_evaluation_policy
from sb3_offline.ope.fqe import FQE
from sb3_offline.ope.loading import find_algorithm_class, load_model
from sb3_offline.ope.metrics import (
    DEFAULT_METRICS,
    METRICS,
    ActionDifference,
    AverageValue,
    DiscountedAdvantageSum,
    HeldOutEpisodes,
    InitialStateValue,
    OfflineMetric,
    SoftOPC,
    TDError,
    ValueModel,
    evaluate_offline,
    fetch_success,
)
from sb3_offline.ope.split import EpisodeSplit, split_episodes

__all__ = [
    "DEFAULT_METRICS",
    "FQE",
    "METRICS",
    "ActionDifference",
    "AverageValue",
    "DiscountedAdvantageSum",
    "EpisodeSplit",
    "EvaluationPolicy",
    "HeldOutEpisodes",
    "InitialStateValue",
    "OfflineEvalCallback",
    "OfflineMetric",
    "PolicyValueEstimate",
    "SoftOPC",
    "TDError",
    "ValueModel",
    "as_evaluation_policy",
    "bootstrap_interval",
    "evaluate_offline",
    "fetch_success",
    "find_algorithm_class",
    "load_model",
    "split_episodes",
    "undiscounted_from_discounted",
]
