"""Weight initialisations of the authors' code that PyTorch's default does not give."""

from __future__ import annotations

import math

import torch as th
from torch import nn


def rlkit_init(mlp: nn.Module, init_w: float) -> None:
    """
    rlkit's ``Mlp`` initialisation (``rlkit/torch/networks/mlp.py``): hidden weights uniform in
    ``+-1 / sqrt(size[0])`` (``ptu.fanin_init``, whose ``size[0]`` is a ``Linear``'s output size), hidden
    biases 0, last layer's weights uniform in ``+-init_w`` and its bias 0.
    """
    linears = [layer for layer in mlp.modules() if isinstance(layer, nn.Linear)]
    with th.no_grad():
        for layer in linears[:-1]:
            bound = 1.0 / math.sqrt(layer.weight.shape[0])
            layer.weight.uniform_(-bound, bound)
            layer.bias.zero_()
        linears[-1].weight.uniform_(-init_w, init_w)
        linears[-1].bias.zero_()


def orthogonal_init(*modules: nn.Module, gain: float = math.sqrt(2)) -> None:
    """
    Every ``nn.Linear`` in ``modules``: weights orthogonal with ``gain``, biases 0. IQL's authors'
    ``default_init`` (``ikostrikov/implicit_q_learning`` commit e3d4e61, ``common.py``:
    ``nn.initializers.orthogonal(sqrt(2))`` on every flax ``Dense`` kernel, whose biases start at 0).

    :param modules: the networks (every linear layer in them, the last included)
    :param gain: the orthogonal matrices' scale
    """
    with th.no_grad():
        for module in modules:
            for layer in module.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.orthogonal_(layer.weight, gain=gain)
                    if layer.bias is not None:
                        layer.bias.zero_()
