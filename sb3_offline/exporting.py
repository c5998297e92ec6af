"""
Export a trained policy as one TorchScript or ONNX graph that runs without sb3_offline (or SB3) installed.

The graph is ``predict(observation, deterministic=True)``: raw observations in, actions in the env's units
out, with everything the policy does on the way (its features extractor, an observation normaliser included;
BCQ's candidate sampling and argmax over ``Q1``; PLAS's and LAPO's decoding and LAPO's action de-normalisation)
and SB3's last step (actions rescaled from [-1, 1] to the action ``Box``, or clipped to it). It is the policy's
own acting function, ``policy._predict(observation, deterministic=True)``, wrapped (:class:`ExportablePolicy`),
as SB3's export guide wraps a policy in an ``OnnxableSB3Policy``; a new algorithm is exportable when its
``_predict`` can be traced. Conventions (SB3's guide):

- inputs: ``observation`` (a ``Box``), or one input per key of a ``Dict`` observation, named by the key, in the
  order of the observation space; ``float32`` (integer spaces, e.g. images, keep their dtype; images channel
  first, as the policy sees them); the first axis is the batch, of any size;
- output: ``action``, ``(batch, *action_shape)``, ``float32``, in the env's units; for a ``Discrete`` action space
  ``(batch,)`` ``int64`` action indices (the argmax of the policy, DQN's, inside the graph);
- a policy that draws random numbers when acting (BCQ's samples of its VAE's prior) draws them inside the graph
  (TorchScript: from torch's global generator, seeded by ``torch.manual_seed``; ONNX: ``RandomNormalLike``), or,
  with ``noise_input=True``, takes the standard normal draws as a last input ``noise`` of shape
  ``(batch, *policy.acting_noise_shape())``, so that a caller can reproduce actions exactly.

TorchScript files are traced (``torch.jit.trace``, then ``torch.jit.freeze``) and load with ``torch.jit.load``;
ONNX files are written by PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``, opset 17)
and run with onnxruntime (``pip install -e '.[export]'`` in sb3-offline's clone). PyTorch 2.13 deprecates both (its
warnings are silenced here; docs/design.md says why these two are used). Both files carry a description of their
inputs and outputs (:func:`export_metadata`, read back by :func:`read_metadata`): the ONNX file in its
``metadata_props`` (key ``sb3_offline``), the TorchScript file as the extra file ``sb3_offline.json``.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from torch import nn

#: the formats :func:`export` writes
FORMATS = ("torchscript", "onnx")
#: the usual file suffix of each format (the command line's default output)
FORMAT_SUFFIXES = {"torchscript": "pt", "onnx": "onnx"}
#: ONNX opset of the exported graphs
ONNX_OPSET = 17
#: name of the input of a ``Box`` observation
OBSERVATION_INPUT = "observation"
#: name of the output
ACTION_OUTPUT = "action"
#: name of the random-draws input (``noise_input=True``)
NOISE_INPUT = "noise"
#: name of the description inside a TorchScript file (``torch.jit.load(path, _extra_files={...: ""})``)
METADATA_FILE = "sb3_offline.json"
#: key of the description in an ONNX file's ``metadata_props``
METADATA_KEY = "sb3_offline"
#: how many example observations the graph is traced with (any batch size works afterwards)
_EXAMPLE_BATCH = 3


def _observation_spaces(policy: BasePolicy) -> dict[str, spaces.Box]:
    """Input name -> space: ``{"observation": box}`` or the ``Dict``'s keys in order."""
    space = policy.observation_space
    named = dict(space.spaces) if isinstance(space, spaces.Dict) else {OBSERVATION_INPUT: space}
    for name, subspace in named.items():
        if not isinstance(subspace, spaces.Box):
            where = "observation_space" if not isinstance(space, spaces.Dict) else f"observation_space['{name}']"
            raise ValueError(f"{where}: expected a Box to export, found {type(subspace).__name__}")
    return named  # type: ignore[return-value]


def _input_dtype(space: spaces.Box) -> th.dtype:
    """``float32`` for a float space (``preprocess_obs`` casts to it anyway), the space's own dtype otherwise."""
    if np.issubdtype(space.dtype, np.floating):
        return th.float32
    return th.from_numpy(np.zeros(0, dtype=space.dtype)).dtype


class ExportablePolicy(nn.Module):
    """
    ``policy.predict(observation, deterministic=True)`` as one traceable module: ``forward(*inputs)`` takes the
    observation (one tensor, or one per ``Dict`` key in the space's order; then the noise with
    ``noise_input=True``) and returns the actions in the env's units, as SB3's ``predict`` post-processes them
    (rescaled from [-1, 1] to the ``Box`` when the policy squashes its output, clipped to it otherwise).

    :param policy: the policy (it is used as is: pass a copy on the CPU in eval mode to export, as :func:`export`)
    :param noise_input: take the standard normal draws of the acting function as a last input (a policy with
        ``acting_noise_shape()``, e.g. BCQ's) instead of drawing them inside
    """

    low: th.Tensor
    high: th.Tensor

    def __init__(self, policy: BasePolicy, noise_input: bool = False) -> None:
        super().__init__()
        action_space = policy.action_space
        if not isinstance(action_space, spaces.Box | spaces.Discrete):
            raise ValueError(
                f"action_space: expected a Box or a Discrete to export, found {type(action_space).__name__}"
            )
        if noise_input and not hasattr(policy, "acting_noise_shape"):
            raise ValueError(
                f"noise_input: expected a policy that draws random numbers when acting (with acting_noise_shape()), "
                f"found {type(policy).__name__}, whose deterministic actions draw none"
            )
        self.policy = policy
        self.input_spaces = _observation_spaces(policy)
        if noise_input and NOISE_INPUT in self.input_spaces:
            raise ValueError(
                f"noise_input: expected no observation key named {NOISE_INPUT!r} (the noise input's name), found one"
            )
        self.is_dict = isinstance(policy.observation_space, spaces.Dict)
        self.noise_input = noise_input
        self.squash_output = bool(policy.squash_output)
        self.action_shape = tuple(int(n) for n in action_space.shape or ())
        #: whether the actions are indices (a ``Discrete`` space: int64, no rescaling)
        self.discrete = isinstance(action_space, spaces.Discrete)
        #: whether ``forward`` checks its inputs' shapes (the TorchScript file; onnxruntime checks an ONNX file's)
        self.check_inputs = False
        low, high = (
            (0, action_space.n - 1)
            if isinstance(action_space, spaces.Discrete)
            else (action_space.low, action_space.high)
        )
        self.register_buffer("low", th.as_tensor(low, dtype=th.float32))
        self.register_buffer("high", th.as_tensor(high, dtype=th.float32))

    @property
    def input_names(self) -> list[str]:
        return [*self.input_spaces, *([NOISE_INPUT] if self.noise_input else [])]

    def noise_shape(self) -> tuple[int, ...]:
        """Per observation, the shape of the ``noise`` input (``()`` without one)."""
        return tuple(self.policy.acting_noise_shape()) if self.noise_input else ()  # type: ignore[operator]

    def example_inputs(self, batch_size: int = _EXAMPLE_BATCH) -> tuple[th.Tensor, ...]:
        """Inputs to trace with: observations sampled from the space (``noise``: standard normal draws)."""
        inputs = []
        for space in self.input_spaces.values():
            sample = np.stack([space.sample() for _ in range(batch_size)])
            inputs.append(th.as_tensor(sample).to(_input_dtype(space)))
        if self.noise_input:
            inputs.append(th.randn(batch_size, *self.noise_shape()))
        return tuple(inputs)

    def forward(self, *inputs: th.Tensor) -> th.Tensor:
        n_observations = len(self.input_spaces)
        observations = inputs[:n_observations]
        if self.check_inputs:  # TorchScript: a clear error for an input without its batch axis or of another shape
            observations = tuple(
                _check_input(observation, name, [int(n) for n in space.shape], str(_input_dtype(space))[6:])
                for (name, space), observation in zip(self.input_spaces.items(), observations, strict=True)
            )
        observation: Any = dict(zip(self.input_spaces, observations, strict=True)) if self.is_dict else observations[0]
        if self.noise_input:
            actions = self.policy._predict(observation, deterministic=True, noise=inputs[n_observations])  # type: ignore[call-arg]
        else:
            actions = self.policy._predict(observation, deterministic=True)
        actions = actions.reshape(-1, *self.action_shape)
        if self.discrete:  # the policy's argmax, as DQN's predict returns it
            return actions.to(th.int64)
        if self.squash_output:  # BasePolicy.unscale_action
            return self.low + 0.5 * (actions + 1.0) * (self.high - self.low)
        return th.maximum(th.minimum(actions, self.high), self.low)


@th.jit.script
def _check_input(observation: th.Tensor, name: str, shape: list[int], dtype: str) -> th.Tensor:
    """In a TorchScript file: ``observation`` if it is ``(batch, *shape)``, else a ``ValueError`` naming the input,
    its expected shape and dtype."""
    if observation.dim() != len(shape) + 1 or observation.shape[1:] != shape:
        raise ValueError(
            "{}: expected a {} tensor of shape (batch, {}): the batch axis first (observation[None] for one "
            "observation), found shape {}".format(name, dtype, ", ".join([str(n) for n in shape]), observation.shape)
        )
    return observation


def export_metadata(module: ExportablePolicy, algorithm: str, format: str) -> dict[str, Any]:
    """The description written into an exported file: inputs (name, shape with ``"batch"`` first, dtype), output,
    the action bounds, the algorithm, whether the graph samples (and from what)."""
    inputs = [
        {"name": name, "shape": ["batch", *space.shape], "dtype": str(_input_dtype(space)).replace("torch.", "")}
        for name, space in module.input_spaces.items()
    ]
    if module.noise_input:
        inputs.append({"name": NOISE_INPUT, "shape": ["batch", *module.noise_shape()], "dtype": "float32"})
    samples = hasattr(module.policy, "acting_noise_shape")
    return {
        "format": format,
        "algorithm": algorithm,
        "inputs": inputs,
        "output": {
            "name": ACTION_OUTPUT,
            "shape": ["batch", *module.action_shape],
            "dtype": "int64" if module.discrete else "float32",
        },
        "action_low": module.low.tolist(),
        "action_high": module.high.tolist(),
        "random": "input" if module.noise_input else ("inside" if samples else "none"),
    }


def _policy_of(model: BaseAlgorithm | BasePolicy) -> tuple[BasePolicy, str]:
    if isinstance(model, BaseAlgorithm):
        return model.policy, type(model).__name__
    if isinstance(model, BasePolicy):
        return model, type(model).__name__
    raise ValueError(f"model: expected an SB3 algorithm or policy, found {type(model).__name__}")


def _format_of(path: Path, format: str | None) -> str:
    if format is None:
        format = "onnx" if path.suffix.lower() == ".onnx" else "torchscript"
    if format not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, found {format!r}")
    return format


def export(
    model: BaseAlgorithm | BasePolicy,
    path: str | os.PathLike,
    format: str | None = None,
    noise_input: bool = False,
    opset_version: int = ONNX_OPSET,
) -> Path:
    """
    Write ``model``'s ``predict(observation, deterministic=True)`` as a TorchScript (``.pt``) or ONNX (``.onnx``)
    graph (see the module's description for its inputs and output). The model is left as it was: a CPU copy of
    its policy in eval mode is exported.

    :param model: a trained algorithm (any of ours; SB3's off-policy ones work too) or its policy
    :param path: the file to write (folders are made)
    :param format: ``"torchscript"`` or ``"onnx"`` (default: ``"onnx"`` for a ``.onnx`` path, else ``"torchscript"``)
    :param noise_input: for a policy that samples when acting (BCQ), take its standard normal draws as a last
        input ``noise`` instead of drawing them inside the graph
    :param opset_version: ONNX opset
    :return: the path written
    """
    path = Path(path)
    format = _format_of(path, format)
    source, algorithm = _policy_of(model)
    policy = copy.deepcopy(source).to("cpu")
    policy.set_training_mode(False)
    policy.requires_grad_(False)
    module = ExportablePolicy(policy, noise_input=noise_input).eval()
    metadata = export_metadata(module, algorithm, format)
    example = module.example_inputs()
    path.parent.mkdir(parents=True, exist_ok=True)
    with th.no_grad(), warnings.catch_warnings():
        # tracing a policy warns where Python reads tensors (e.g. torch.distributions' argument checks): these
        # reads do not change the graph's operations
        warnings.simplefilter("ignore", category=th.jit.TracerWarning)
        # torch 2.13 deprecates torch.jit and the TorchScript-based ONNX exporter (docs/design.md, "Export")
        warnings.filterwarnings("ignore", message=r".*(torch\.jit|legacy TorchScript-based ONNX).*")
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        # BCQ's pick of the best candidate per state: its indices are never negative
        warnings.filterwarnings("ignore", message=r"Exporting aten::index operator of advanced indexing")
        if format == "torchscript":
            _export_torchscript(module, example, path, metadata)
        else:
            _export_onnx(module, example, path, metadata, opset_version)
    return path


def _export_torchscript(module: ExportablePolicy, example: tuple[th.Tensor, ...], path: Path, metadata: dict) -> None:
    # check_trace=False: a sampling policy's two runs differ by design
    module.check_inputs = True
    try:
        traced = th.jit.trace(module, example, check_trace=False)
    finally:
        module.check_inputs = False
    frozen = th.jit.freeze(traced)
    th.jit.save(frozen, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})


def _export_onnx(
    module: ExportablePolicy, example: tuple[th.Tensor, ...], path: Path, metadata: dict, opset_version: int
) -> None:
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            "format='onnx' needs the onnx package: pip install onnx onnxruntime "
            "(or pip install -e '.[export]' in sb3-offline's clone)"
        ) from error
    names = module.input_names
    dynamic_axes = {name: {0: "batch"} for name in [*names, ACTION_OUTPUT]}
    th.onnx.export(
        module,
        example,
        str(path),
        dynamo=False,
        input_names=names,
        output_names=[ACTION_OUTPUT],
        dynamic_axes=dynamic_axes,
        opset_version=opset_version,
        do_constant_folding=True,
    )
    graph = onnx.load(str(path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The description :func:`export` wrote into a file (see :func:`export_metadata`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: expected an exported .pt or .onnx file, found nothing at {path}")
    if path.suffix.lower() == ".onnx":
        import onnx

        properties = {entry.key: entry.value for entry in onnx.load(str(path), load_external_data=False).metadata_props}
        text = properties.get(METADATA_KEY)
    else:
        extra = {METADATA_FILE: ""}
        th.jit.load(str(path), map_location="cpu", _extra_files=extra)
        text = extra[METADATA_FILE] or None
    if text is None:
        raise ValueError(f"path: expected a file written by sb3_offline.export, found no description in {path}")
    return dict(json.loads(text))


__all__ = ["FORMATS", "FORMAT_SUFFIXES", "ExportablePolicy", "export", "export_metadata", "read_metadata"]
