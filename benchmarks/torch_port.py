"""Weight-for-weight port of a tf_keras Functional model to PyTorch, for timing the same model in PyTorch.

The port walks the Keras graph node by node (nested Functional models included) and replays every layer with the
equivalent ``torch.nn.functional`` op on the same weights, in PyTorch's channels-first layout (``(batch, channels,
time)``, as asteroid's Conv-TasNet runs), so its outputs can be compared with the Keras model's to float32
round-off. Inputs and outputs keep the Keras layout; 3-D tensors are transposed once on the way in and out.

Supported layers: tf_keras ``Conv1D`` (any padding, stride, dilation, groups, activation), ``Conv1DTranspose``
('valid'), ``DepthwiseConv1D``, ``Dense``, ``PReLU``, ``ReLU``, ``Activation``, ``Add``, ``Subtract``, ``Multiply``,
``Reshape((-1, 1))`` and the float Conv-TasNet layers of ``reproductions/fqse/convtasnet.py`` (``Encoder``,
``GlobalLayerNorm``, ``SharedPReLU``, ``PointwiseConv``, ``DepthwiseConv``, ``Decoder``, ``LastResidualSink``,
``PadToLength``). Anything else raises ValueError naming the layer, so a port never silently differs.

PyTorch is optional (``pip install torch==2.13.0``, CPU build); :func:`torch_available` says whether it imports.
"""
from __future__ import annotations

import math

import numpy as np


def torch_available() -> tuple[bool, str]:
    try:
        import torch  # noqa: F401
    except ImportError as error:
        return False, f"PyTorch not installed ({error}); optional: pip install torch==2.13.0"
    return True, ""


def _activation(name):
    import torch
    import torch.nn.functional as functional

    table = {"linear": lambda x: x, None: lambda x: x, "relu": functional.relu, "tanh": torch.tanh,
             "sigmoid": torch.sigmoid, "softplus": functional.softplus, "elu": functional.elu}
    if name not in table:
        raise ValueError(f"activation {name!r} has no PyTorch equivalent here")
    return table[name]


def _activation_name(layer):
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", activation)


def _same_padding(length, kernel, stride, dilation):
    """TensorFlow's 'SAME' padding (left, right): the extra sample goes to the right."""
    effective = (kernel - 1) * dilation + 1
    output = math.ceil(length / stride)
    total = max((output - 1) * stride + effective - length, 0)
    return total // 2, total - total // 2


def _tensor(array):
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, np.float32)))


def _conv(weight, bias, stride, dilation, groups, padding, kernel):
    """A channels-first conv1d closure with Keras padding semantics."""
    import torch.nn.functional as functional

    def run(x):
        if padding == "same":
            x = functional.pad(x, _same_padding(x.shape[-1], kernel, stride, dilation))
        elif padding == "causal":
            x = functional.pad(x, ((kernel - 1) * dilation, 0))
        return functional.conv1d(x, weight, bias, stride=stride, dilation=dilation, groups=groups)

    return run


def _prelu(slope):
    def run(x):
        return x.clamp(min=0) - slope * (-x).clamp(min=0)

    return run


def _port_layer(layer, parameters: list):
    """Return a callable on channels-first torch tensors reproducing ``layer``; appends its tensors to
    ``parameters`` (kept on the module so they live as long as it)."""
    import torch
    import torch.nn.functional as functional

    kind = type(layer).__name__
    if getattr(layer, "quantization", None):
        raise ValueError(f"layer {layer.name} ({kind}) is fake-quantized; port the float model")

    def keep(array):
        tensor = _tensor(array)
        parameters.append(tensor)
        return tensor

    if kind == "Conv1D":
        kernel = layer.kernel.numpy()  # (k, in/groups, out)
        weight = keep(kernel.transpose(2, 1, 0))
        bias = keep(layer.bias.numpy()) if layer.use_bias else None
        conv = _conv(weight, bias, layer.strides[0], layer.dilation_rate[0], layer.groups, layer.padding,
                     kernel.shape[0])
        activation = _activation(_activation_name(layer))
        return lambda x: activation(conv(x))
    if kind == "DepthwiseConv1D":
        kernel = layer.depthwise_kernel.numpy()  # (k, in, multiplier)
        channels, multiplier = kernel.shape[1], kernel.shape[2]
        weight = keep(kernel.transpose(1, 2, 0).reshape(channels * multiplier, 1, kernel.shape[0]))
        bias = keep(layer.bias.numpy()) if layer.use_bias else None
        conv = _conv(weight, bias, layer.strides[0], layer.dilation_rate[0], channels, layer.padding,
                     kernel.shape[0])
        activation = _activation(_activation_name(layer))
        return lambda x: activation(conv(x))
    if kind == "Conv1DTranspose":
        if layer.padding != "valid" or layer.output_padding is not None:
            raise ValueError(f"{layer.name}: only 'valid' Conv1DTranspose without output_padding")
        kernel = layer.kernel.numpy()  # (k, out, in)
        weight = keep(kernel.transpose(2, 1, 0))  # ConvTranspose1d: (in, out, k)
        bias = keep(layer.bias.numpy()) if layer.use_bias else None
        stride, dilation = layer.strides[0], layer.dilation_rate[0]
        activation = _activation(_activation_name(layer))
        return lambda x: activation(functional.conv_transpose1d(x, weight, bias, stride=stride, dilation=dilation))
    if kind == "Dense":
        weight = keep(layer.kernel.numpy().T)  # (out, in)
        bias = keep(layer.bias.numpy()) if layer.use_bias else None
        activation = _activation(_activation_name(layer))

        def dense(x):
            if x.dim() == 3:  # channels-first (B, C, T): a 1x1 convolution
                return activation(functional.conv1d(x, weight[:, :, None], bias))
            return activation(functional.linear(x, weight, bias))

        return dense
    if kind == "PReLU":
        alpha = layer.alpha.numpy()  # (T or 1, C) for 3-D inputs, shared axes of size 1
        if alpha.ndim == 2:
            alpha = alpha.T  # -> (C, T or 1): broadcasts against (B, C, T)
        return _prelu(keep(alpha))
    if kind == "ReLU":
        if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
            raise ValueError(f"{layer.name}: only plain ReLU is supported")
        return functional.relu
    if kind == "Activation":
        return _activation(_activation_name(layer))
    if kind == "Add":
        return lambda *xs: sum(xs[1:], xs[0])
    if kind == "Subtract":
        return lambda a, b: a - b
    if kind == "Multiply":
        def multiply(*xs):
            result = xs[0]
            for x in xs[1:]:
                result = result * x
            return result

        return multiply
    if kind == "Reshape":
        if tuple(layer.target_shape) != (-1, 1):
            raise ValueError(f"{layer.name}: only Reshape((-1, 1)) (add a channel) is supported")
        return lambda x: x.unsqueeze(1)  # (B, T) -> channels-first (B, 1, T)
    # Conv-TasNet layers of reproductions/fqse/convtasnet.py (float).
    if kind == "Encoder":
        kernel = layer.kernel.numpy()[0]  # (L, in, N)
        weight = keep(kernel.transpose(2, 1, 0))
        stride = layer.stride
        return lambda x: functional.conv1d(x, weight, None, stride=stride)
    if kind == "GlobalLayerNorm":
        gamma = keep(layer.gamma.numpy()[:, None])
        beta = keep(layer.beta.numpy()[:, None])
        epsilon = layer.epsilon

        def global_layer_norm(x):
            mean = x.mean(dim=(1, 2), keepdim=True)
            centred = x - mean
            variance = (centred * centred).mean(dim=(1, 2), keepdim=True)
            return centred * torch.rsqrt(variance + epsilon) * gamma + beta

        return global_layer_norm
    if kind == "SharedPReLU":
        return _prelu(keep(layer.slope.numpy()))
    if kind == "PointwiseConv":
        weight = keep(layer.kernel.numpy()[0, 0].T[:, :, None])  # (out, in, 1)
        bias = keep(layer.bias.numpy())
        after = {None: lambda x: x, "relu": functional.relu}.get(layer.activation)
        if layer.activation == "prelu":
            after = _prelu(keep(layer.slope.numpy()))
        return lambda x: after(functional.conv1d(x, weight, bias))
    if kind == "DepthwiseConv":
        kernel = layer.kernel.numpy()[:, 0, 0, :]  # (P, C)
        weight = keep(kernel.T[:, None, :])  # (C, 1, P)
        bias = keep(layer.bias.numpy())
        slope = keep(layer.slope.numpy())
        dilation, size = layer.dilation, layer.kernel_size
        padding = dilation * (size - 1) // 2
        activation = _prelu(slope)
        return lambda x: activation(functional.conv1d(x, weight, bias, padding=padding, dilation=dilation,
                                                      groups=x.shape[1]))
    if kind == "Decoder":
        kernel = layer.kernel.numpy()[0]  # (L, 1, N)
        weight = keep(kernel.transpose(2, 1, 0))  # (N, 1, L)
        stride = layer.stride
        return lambda x: functional.conv_transpose1d(x, weight, None, stride=stride)
    if kind == "LastResidualSink":
        return lambda skip_sum, _unused: skip_sum
    if kind == "PadToLength":
        def pad_to_length(signal, reference):
            signal = signal[:, 0, :]
            return functional.pad(signal, (0, reference.shape[-1] - signal.shape[-1]))

        return pad_to_length
    raise ValueError(f"layer {layer.name!r} of type {kind} has no PyTorch port")


def _compile(model, parameters):
    """Steps ``(function, input ids, output ids)`` of a Functional model in execution order."""
    from common.tfkeras import keras

    if not getattr(model, "_is_graph_network", False):
        raise ValueError(f"{model.name!r} is not a Functional model")
    steps = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            layer = node.layer
            if isinstance(layer, keras.Model) and getattr(layer, "_is_graph_network", False):
                inner = _compile(layer, parameters)
                function = _subgraph(layer, inner)
            else:
                function = _port_layer(layer, parameters)
            steps.append((function, list(node.flat_input_ids), list(node.flat_output_ids)))
    return steps


def _subgraph(model, steps):
    input_ids = [str(id(tensor)) for tensor in model.inputs]
    output_ids = [str(id(tensor)) for tensor in model.outputs]

    def run(*inputs):
        values = _execute(steps, dict(zip(input_ids, inputs)))
        outputs = [values[key] for key in output_ids]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    return run


def _execute(steps, values):
    for function, inputs, outputs in steps:
        result = function(*[values[key] for key in inputs])
        results = result if isinstance(result, tuple) else (result,)
        for key, value in zip(outputs, results):
            values[key] = value
    return values


class TorchPort:
    """PyTorch replay of a tf_keras Functional model on the same weights (inference only).

    ``port(*arrays)`` takes and returns numpy arrays in the Keras layout; ``port.forward_torch(*tensors)`` runs on
    channels-first torch tensors without conversions (what :func:`time_torch` times).
    """

    def __init__(self, model):
        self.parameters = []
        self.steps = _compile(model, self.parameters)
        self.input_ids = [str(id(tensor)) for tensor in model.inputs]
        self.output_ids = [str(id(tensor)) for tensor in model.outputs]
        self.name = model.name

    def forward_torch(self, *tensors):
        import torch

        with torch.inference_mode():
            values = _execute(self.steps, dict(zip(self.input_ids, tensors)))
        outputs = [values[key] for key in self.output_ids]
        return outputs[0] if len(outputs) == 1 else outputs

    @staticmethod
    def to_torch(array):
        tensor = _tensor(array)
        return tensor.transpose(1, 2).contiguous() if tensor.dim() == 3 else tensor

    @staticmethod
    def to_numpy(tensor):
        if tensor.dim() == 3:
            tensor = tensor.transpose(1, 2)
        return tensor.contiguous().numpy()

    def __call__(self, *arrays):
        outputs = self.forward_torch(*[self.to_torch(array) for array in arrays])
        if isinstance(outputs, list):
            return [self.to_numpy(output) for output in outputs]
        return self.to_numpy(outputs)


def time_torch(port: TorchPort, arrays, threads: int, repeats: int, warmup: int = 2) -> dict:
    """Median/min/max wall time of the port on ``arrays`` with ``torch.set_num_threads(threads)``."""
    import torch

    from benchmarks.timing import time_callable

    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        tensors = [port.to_torch(array) for array in arrays]
        return time_callable(lambda: port.forward_torch(*tensors), repeats=repeats, warmup=warmup)
    finally:
        torch.set_num_threads(previous)
