"""
An ensemble of N MLPs held as stacked weights and evaluated with one batched matrix product per layer (the
``VectorizedLinear`` of CORL's ``sac_n.py``/``edac.py`` and the ``ParallelizedLayerMLP`` of the EDAC authors'
code, ``snu-mllab/EDAC``, ``lifelong_rl/models/networks.py``), and SB3's critic on it.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class VectorizedLinear(nn.Module):
    """
    ``n_members`` linear layers in one: weight ``(n_members, in_features, out_features)``, bias
    ``(n_members, 1, out_features)``; ``forward`` maps ``(n_members, batch, in_features)`` to
    ``(n_members, batch, out_features)`` with one ``torch.baddbmm``. Member ``i`` computes what an ``nn.Linear``
    whose ``weight`` is ``self.weight[i].T`` and ``bias`` is ``self.bias[i, 0]`` computes.

    :param in_features: input size of each member
    :param out_features: output size of each member
    :param n_members: number of members
    """

    def __init__(self, in_features: int, out_features: int, n_members: int) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features), ("n_members", n_members)):
            if int(value) < 1:
                raise ValueError(f"VectorizedLinear {name}: expected an integer >= 1, found {value}")
        self.in_features, self.out_features, self.n_members = int(in_features), int(out_features), int(n_members)
        self.weight = nn.Parameter(th.empty(self.n_members, self.in_features, self.out_features))
        self.bias = nn.Parameter(th.empty(self.n_members, 1, self.out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """
        Each member as PyTorch initialises an ``nn.Linear``: its ``(out, in)`` weight by ``kaiming_uniform_`` with
        ``a = sqrt(5)`` (uniform in ``+-1 / sqrt(in_features)``), then its bias uniform in ``+-1 / sqrt(in_features)``,
        member after member (the draws of member ``i`` are those of an ``nn.Linear`` made at that point of the random
        stream). CORL's ``VectorizedLinear`` runs ``kaiming_uniform_`` on the ``(in, out)`` slice, whose fan-in is
        then ``out_features``; here the fan-in is the input size, as ``nn.Linear``'s.
        """
        bound = 1.0 / math.sqrt(self.in_features)
        with th.no_grad():
            for member in range(self.n_members):
                weight = th.empty(
                    self.out_features, self.in_features, dtype=self.weight.dtype, device=self.weight.device
                )
                nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
                self.weight[member].copy_(weight.T)
                self.bias[member].uniform_(-bound, bound)

    def forward(self, x: th.Tensor) -> th.Tensor:
        """``(n_members, batch, in_features)`` -> ``(n_members, batch, out_features)``"""
        return th.baddbmm(self.bias, x, self.weight)

    def member_forward(self, x: th.Tensor, member: int) -> th.Tensor:
        """Member ``member`` alone: ``(batch, in_features)`` -> ``(batch, out_features)``."""
        return th.addmm(self.bias[member], x, self.weight[member])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, n_members={self.n_members}"


class VectorizedLayerNorm(nn.Module):
    """
    ``n_members`` ``nn.LayerNorm`` over the last dimension, each with its own scale ``weight[i]`` and shift
    ``bias[i]`` (``(n_members, 1, size)``, from 1 and 0), as a ``vmap``-ed ensemble of critics with LayerNorm holds
    one per member (ReBRAC's ``EnsembleCritic``, ``nn.vmap`` with ``variable_axes={"params": 0}``).

    :param size: normalised size
    :param n_members: number of members
    :param eps: added to the variance (PyTorch's default 1e-5; flax's ``nn.LayerNorm`` uses 1e-6)
    """

    def __init__(self, size: int, n_members: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.size, self.n_members, self.eps = int(size), int(n_members), float(eps)
        self.weight = nn.Parameter(th.ones(self.n_members, 1, self.size))
        self.bias = nn.Parameter(th.zeros(self.n_members, 1, self.size))

    def forward(self, x: th.Tensor) -> th.Tensor:
        """``(n_members, batch, size)`` -> same"""
        return nn.functional.layer_norm(x, (self.size,), eps=self.eps) * self.weight + self.bias

    def member_forward(self, x: th.Tensor, member: int) -> th.Tensor:
        """Member ``member`` alone: ``(batch, size)`` -> same."""
        return nn.functional.layer_norm(x, (self.size,), self.weight[member, 0], self.bias[member, 0], self.eps)

    def extra_repr(self) -> str:
        return f"size={self.size}, n_members={self.n_members}, eps={self.eps}"


class EnsembleMLP(nn.Module):
    """
    ``n_members`` MLPs of the same shape (``net_arch`` hidden sizes, ``activation_fn`` after each hidden layer, a
    linear output) as one network of :class:`VectorizedLinear` layers, in ``self.net`` (an ``nn.Sequential``).
    With ``layer_norm``, a per-member LayerNorm follows each hidden layer's activation: ``Linear -> ReLU ->
    LayerNorm``, the order of ReBRAC's critic (``tinkoff-ai/ReBRAC`` and CORL's ``rebrac.py``: ``nn.Dense``,
    ``nn.relu``, ``nn.LayerNorm``) and of the EDAC authors' ``ParallelizedEnsembleFlattenMLP``.

    :param input_dim: input size of each member
    :param output_dim: output size of each member
    :param net_arch: hidden sizes
    :param n_members: number of members
    :param activation_fn: activation after each hidden layer
    :param layer_norm: a LayerNorm after each hidden activation
    :param init: called with the ensemble once it is built, to initialise its members as an algorithm's authors do
        (e.g. :func:`fanin_init`); without it each layer keeps ``nn.Linear``'s initialisation, member by member
    :param layer_norm_eps: the LayerNorms' epsilon
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        net_arch: list[int],
        n_members: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        layer_norm: bool = False,
        init: Callable[[EnsembleMLP], None] | None = None,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.input_dim, self.output_dim, self.n_members = int(input_dim), int(output_dim), int(n_members)
        self.net_arch, self.layer_norm = [int(size) for size in net_arch], bool(layer_norm)
        self.activation_fn, self.layer_norm_eps = activation_fn, float(layer_norm_eps)
        layers: list[nn.Module] = []
        sizes = [self.input_dim, *self.net_arch]
        for in_size, out_size in itertools.pairwise(sizes):
            layers += [VectorizedLinear(in_size, out_size, self.n_members), activation_fn()]
            if self.layer_norm:
                layers.append(VectorizedLayerNorm(out_size, self.n_members, layer_norm_eps))
        layers.append(VectorizedLinear(sizes[-1], self.output_dim, self.n_members))
        self.net = nn.Sequential(*layers)
        if init is not None:
            init(self)

    @property
    def linears(self) -> list[VectorizedLinear]:
        """The linear layers, input first (the last one is the output layer)."""
        return [layer for layer in self.net if isinstance(layer, VectorizedLinear)]

    def forward(self, x: th.Tensor) -> th.Tensor:
        """
        ``(batch, input_dim)`` (the same input for every member) or ``(n_members, batch, input_dim)`` ->
        ``(n_members, batch, output_dim)``
        """
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_members, -1, -1)
        if x.dim() != 3 or x.shape[0] != self.n_members or x.shape[2] != self.input_dim:
            raise ValueError(
                f"EnsembleMLP input: expected (batch, {self.input_dim}) or ({self.n_members}, batch, "
                f"{self.input_dim}), found {tuple(x.shape)}"
            )
        return self.net(x)

    def member_forward(self, x: th.Tensor, member: int = 0) -> th.Tensor:
        """Member ``member`` alone on ``(batch, input_dim)``: ``(batch, output_dim)``."""
        for layer in self.net:
            x = layer.member_forward(x, member) if isinstance(layer, _VECTORIZED) else layer(x)
        return x


_VECTORIZED = (VectorizedLinear, VectorizedLayerNorm)


def fanin_init(ensemble: EnsembleMLP, hidden_bias: float = 0.1, last_bound: float = 3e-3) -> None:
    """
    The EDAC authors' initialisation of their critic ensemble (``snu-mllab/EDAC`` commit 198d570,
    ``ParallelizedEnsembleFlattenMLP``: ``ptu.fanin_init`` on each member's ``(in, out)`` hidden weight, uniform in
    ``+-1 / sqrt(in)``, hidden biases ``b_init_value = 0.1``, the output layer's weights and biases uniform in
    ``+-init_w = 3e-3``). rlkit's initialisation of one critic, member by member.

    :param ensemble: the ensemble (initialised in place)
    :param hidden_bias: the hidden layers' bias
    :param last_bound: bound of the output layer's weights and biases
    """
    linears = ensemble.linears
    with th.no_grad():
        for layer in linears[:-1]:
            bound = 1.0 / math.sqrt(layer.in_features)
            for member in range(layer.n_members):
                layer.weight[member].uniform_(-bound, bound)
            layer.bias.fill_(hidden_bias)
        linears[-1].weight.uniform_(-last_bound, last_bound)
        linears[-1].bias.uniform_(-last_bound, last_bound)


def _member_layers(mlp: nn.Module) -> list[nn.Module]:
    return [layer for layer in mlp.modules() if isinstance(layer, (nn.Linear, nn.LayerNorm))]


def _check_members(ensemble: EnsembleMLP, mlps: Sequence[nn.Module]) -> list[list[nn.Module]]:
    targets = [layer for layer in ensemble.net if isinstance(layer, (VectorizedLinear, VectorizedLayerNorm))]
    members = [_member_layers(mlp) for mlp in mlps]
    if len(mlps) != ensemble.n_members:
        raise ValueError(f"mlps: expected {ensemble.n_members} networks (one per member), found {len(mlps)}")
    for index, layers in enumerate(members):
        kinds = ["Linear" if isinstance(layer, nn.Linear) else "LayerNorm" for layer in layers]
        expected = ["Linear" if isinstance(layer, VectorizedLinear) else "LayerNorm" for layer in targets]
        if kinds != expected:
            raise ValueError(f"mlps[{index}]: expected the layers {expected}, found {kinds}")
    return members


def load_members(ensemble: EnsembleMLP, mlps: Sequence[nn.Module]) -> None:
    """
    Copy the weights of ``n_members`` plain MLPs (each an ``nn.Sequential`` of ``nn.Linear``, activations and, with
    ``layer_norm``, ``nn.LayerNorm``, as SB3's ``create_mlp`` or :func:`member_mlps` builds) into ``ensemble``:
    MLP ``i`` becomes member ``i``. A ``ValueError`` names the first MLP whose layers do not match.
    """
    members = _check_members(ensemble, mlps)
    targets = [layer for layer in ensemble.net if isinstance(layer, (VectorizedLinear, VectorizedLayerNorm))]
    with th.no_grad():
        for index, layers in enumerate(members):
            for target, layer in zip(targets, layers, strict=True):
                weight, bias = th.as_tensor(layer.weight), th.as_tensor(layer.bias)
                if isinstance(target, VectorizedLinear):
                    target.weight[index].copy_(weight.T)
                else:
                    target.weight[index, 0].copy_(weight)
                target.bias[index, 0].copy_(bias)


def member_mlps(ensemble: EnsembleMLP) -> list[nn.Sequential]:
    """
    The members as ``n_members`` plain ``nn.Sequential`` MLPs (``nn.Linear``, the ensemble's activation and
    ``nn.LayerNorm`` in the ensemble's order) holding copies of their weights: the inverse of :func:`load_members`.
    """
    mlps = []
    for member in range(ensemble.n_members):
        layers: list[nn.Module] = []
        for layer in ensemble.net:
            if isinstance(layer, VectorizedLinear):
                linear = nn.Linear(layer.in_features, layer.out_features)
                with th.no_grad():
                    linear.weight.copy_(layer.weight[member].T)
                    linear.bias.copy_(layer.bias[member, 0])
                layers.append(linear)
            elif isinstance(layer, VectorizedLayerNorm):
                norm = nn.LayerNorm(layer.size, eps=layer.eps)
                with th.no_grad():
                    norm.weight.copy_(layer.weight[member, 0])
                    norm.bias.copy_(layer.bias[member, 0])
                layers.append(norm)
            else:
                layers.append(ensemble.activation_fn())
        mlps.append(nn.Sequential(*layers).to(ensemble.linears[0].weight.device))
    return mlps


def stack_state_dicts(ensemble: EnsembleMLP, state_dicts: Sequence[dict[str, th.Tensor]]) -> dict[str, th.Tensor]:
    """
    The ensemble's ``state_dict`` made of ``n_members`` state dicts of plain MLPs (e.g. SB3's ``qf0.*``, ``qf1.*``
    keys of an old ``ContinuousCritic`` checkpoint, prefix removed): to load old checkpoints into the ensemble.
    ``ensemble`` is left as it is (and no random number is drawn).
    """
    mlps = member_mlps(ensemble)
    for mlp, state_dict in zip(mlps, state_dicts, strict=True):
        mlp.load_state_dict(state_dict)
    stacked = copy.deepcopy(ensemble)
    load_members(stacked, mlps)
    return stacked.state_dict()


class EnsembleCritic(BaseModel):
    """
    ``n_critics`` Q-functions on one :class:`EnsembleMLP`, in place of SB3's ``ContinuousCritic`` (same arguments,
    same features extractor handling for ``Box`` and ``Dict`` observations): each member maps the state features
    and the action to ``Q(s, a)``; :meth:`forward` returns every member's, ``(n_critics, batch, 1)``.

    :param observation_space: observation space
    :param action_space: action space
    :param net_arch: hidden sizes of each Q-function
    :param features_extractor: features extractor
    :param features_dim: its output size
    :param activation_fn: activation function
    :param normalize_images: divide image observations by 255
    :param n_critics: number of Q-functions
    :param share_features_extractor: the extractor is the actor's (then only the actor's loss trains it)
    :param layer_norm: a LayerNorm after each hidden activation
    :param init: initialisation of the ensemble (see :class:`EnsembleMLP`)
    :param layer_norm_eps: the LayerNorms' epsilon
    """

    features_extractor: BaseFeaturesExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = True,
        layer_norm: bool = False,
        init: Callable[[EnsembleMLP], None] | None = None,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        if int(n_critics) < 1:
            raise ValueError(f"n_critics: expected an integer >= 1, found {n_critics}")
        self.share_features_extractor = share_features_extractor
        self.n_critics = int(n_critics)
        self.q_net = EnsembleMLP(
            features_dim + get_action_dim(action_space),
            1,
            list(net_arch),
            self.n_critics,
            activation_fn,
            layer_norm,
            init,
            layer_norm_eps,
        )

    def q_values(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """
        Every member's ``Q(s, a)`` on already extracted state features ``(batch, features_dim)``: ``actions`` is
        ``(batch, action_dim)`` (the same for each member) or ``(n_critics, batch, action_dim)`` (one set per member,
        e.g. to take each member's gradient with respect to its own actions); returns ``(n_critics, batch, 1)``.
        """
        if actions.dim() == 2:
            return self.q_net(th.cat([features, actions], dim=1))
        features = features.unsqueeze(0).expand(actions.shape[0], -1, -1)
        return self.q_net(th.cat([features, actions], dim=2))

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:  # type: ignore[override]
        """``(n_critics, batch, 1)``; the features extractor learns only from the actor when it is shared."""
        with th.set_grad_enabled(not self.share_features_extractor):
            features = self.extract_features(obs, self.features_extractor)
        return self.q_values(features, actions)

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Member 0's ``Q(s, a)``, ``(batch, 1)``, computed alone (the features extractor gets no gradient)."""
        with th.no_grad():
            features = self.extract_features(obs, self.features_extractor)
        return self.q_net.member_forward(th.cat([features, actions], dim=1), 0)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(n_critics=self.n_critics, net_arch=self.q_net.net_arch, layer_norm=self.q_net.layer_norm)
        return data
