"""Channel surgery: turn zero-masked kernels into a physically smaller Keras model.

Masked (ICSE) pruning leaves dense tensors full of zeros; it saves bits but not compute.  Where a mask empties a
whole channel, :func:`shrink_model` rebuilds the model without it (``docs/toolchain.md#channel-pruning``: slice the
pruned layer's output channels and every consumer's input channels, plus the per-channel parameters in between).

Scope: a linear chain of layers (each layer has one input and one output) whose weighted layers are Conv1D,
Conv2D and Dense (channels last), separated by *per-channel* layers -- layers that treat every channel on its own:
BatchNormalization (axis -1), elementwise activations (Activation, ReLU, LeakyReLU, ELU, PReLU), Dropout, and any
custom layer that declares the class attribute ``channelwise = True`` (e.g. an instance norm over time whose
weights all have the channel count as last axis).

Exactness rules for channel c between convolution i and the next weighted layer i+1:
* if input channel c of layer i+1 is empty (zero in every tap of every filter), channel c is removed: layer i+1
  never reads it, whatever it carries;
* if output channel c of convolution i is dead (its whole filter is zero) its value is the constant bias, which
  the per-channel layers map to a constant ``d_c`` (computed numerically and checked to be constant). It is removed
  when ``d_c == 0``, or when layer i+1 is a Dense or a 'valid'-padded convolution with a bias, where
  ``d_c * sum_taps(w[:, c, j])`` is folded into bias j exactly.  With 'same'/'causal' padding the zero padding
  makes the contribution vary at the edges, so such a channel is kept.
Model inputs and outputs keep their channel count.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from common.tfkeras import keras

_WEIGHTED = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Dense)
_TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose)
_ELEMENTWISE = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
                keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.SpatialDropout1D,
                keras.layers.SpatialDropout2D)


def _is_weighted(layer) -> bool:
    return isinstance(layer, _WEIGHTED) and not isinstance(layer, _TRANSPOSED)


def _is_channelwise(layer) -> bool:
    if isinstance(layer, _ELEMENTWISE):
        return not (isinstance(layer, keras.layers.Activation)
                    and getattr(layer.activation, "__name__", "") in ("softmax", "log_softmax"))
    if isinstance(layer, keras.layers.BatchNormalization):
        axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        return len(axis) == 1 and axis[0] in (-1, len(layer.input_shape) - 1)
    if isinstance(layer, keras.layers.PReLU):
        return True
    return bool(getattr(layer, "channelwise", False))


def _chain(model):
    """The model's layers in order, checking that the graph is a single linear chain."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} must have one input and one output for shrink_model")
    chain = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            raise ValueError(f"nested model {layer.name!r} is not supported by shrink_model; flatten it")
        if len(layer._inbound_nodes) != 1 or len(layer._outbound_nodes) > 1:
            raise ValueError(f"layer {layer.name!r} is used more than once or feeds several layers; "
                             "shrink_model handles linear chains only")
        inbound = layer._inbound_nodes[0].inbound_layers
        inbound = inbound if isinstance(inbound, list) else [inbound]
        if len(inbound) != 1:
            raise ValueError(f"layer {layer.name!r} has {len(inbound)} inputs; linear chains only")
        chain.append(layer)
    return chain


def _kernel(layer, masks):
    kernel = layer.kernel.numpy()
    if layer.name in masks:
        kernel = kernel * np.asarray(masks[layer.name], kernel.dtype)
    return kernel


def _constant_through(layers_, shape, constants):
    """Outputs of ``layers_`` when channel c carries the constant ``constants[c]`` (NaN: live channel, random)."""
    rng = np.random.default_rng(0)
    probe_shape = tuple(8 if dim is None else dim for dim in shape)
    probe_shape = (1,) + probe_shape[1:]
    probe = rng.standard_normal(probe_shape).astype(np.float32)
    dead = ~np.isnan(constants)
    probe[..., dead] = constants[dead].astype(np.float32)
    out = probe
    for layer in layers_:
        out = layer(out, training=False)
    return np.asarray(out)


@dataclasses.dataclass
class SurgeryPlan:
    """Kept output channels per weighted layer (name -> sorted index array), bias corrections from folded dead
    channels (name -> (out,) array added to the next layer's bias), and a readable report."""

    keep: dict
    bias_fold: dict
    report: list


def plan_shrink(model, masks: Mapping[str, np.ndarray] | None = None) -> SurgeryPlan:
    """Decide which channels :func:`shrink_model` removes (see the module docstring for the rules)."""
    masks = dict(masks or {})
    chain = _chain(model)
    for layer in chain:
        if not (_is_weighted(layer) or _is_channelwise(layer)):
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is neither a Conv1D/Conv2D/"
                             "Dense nor a per-channel layer; mark custom per-channel layers with channelwise = True")
    weighted = [i for i, layer in enumerate(chain) if _is_weighted(layer)]
    keep, bias_fold, report = {}, {}, []
    for position, index in enumerate(weighted):
        layer = chain[index]
        channels = layer.kernel.shape[-1]
        if position + 1 == len(weighted):
            keep[layer.name] = np.arange(channels)
            report.append({"layer": layer.name, "channels": channels, "kept": channels, "folded": 0})
            continue
        following = chain[weighted[position + 1]]
        between = chain[index + 1:weighted[position + 1]]
        kernel = _kernel(layer, masks)
        next_kernel = _kernel(following, masks)
        next_view = next_kernel.reshape((-1,) + next_kernel.shape[-2:])
        unread = ~np.any(next_view != 0, axis=(0, 2))  # (channels,)
        dead = ~np.any(kernel.reshape(-1, channels) != 0, axis=0)
        removable = unread.copy()
        fold = np.zeros(next_kernel.shape[-1], np.float64)
        folded = 0
        candidates = dead & ~unread
        if candidates.any():
            bias = layer.bias.numpy() if layer.use_bias else np.zeros(channels, np.float32)
            constants = np.full(channels, np.nan)
            constants[candidates] = bias[candidates]
            out = _constant_through(between, layer.output_shape, constants)
            foldable = isinstance(following, keras.layers.Dense) or (
                getattr(following, "padding", "") == "valid" and following.use_bias)
            for c in np.flatnonzero(candidates):
                values = out[..., c]
                if not np.all(values == values.flat[0]):
                    continue  # not constant (e.g. an unexpected layer); keep the channel to stay exact
                value = float(values.flat[0])
                if value == 0.0:
                    removable[c] = True
                elif foldable and following.use_bias:
                    fold += value * next_view[:, c, :].astype(np.float64).sum(axis=0)
                    removable[c] = True
                    folded += 1
        kept = np.flatnonzero(~removable)
        if kept.size == 0:
            kept = np.array([0])  # Keras layers need >= 1 channel; an all-zero channel keeps the maths identical
        keep[layer.name] = kept
        if folded:
            bias_fold[following.name] = fold
        report.append({"layer": layer.name, "channels": channels, "kept": int(kept.size), "folded": folded})
    return SurgeryPlan(keep=keep, bias_fold=bias_fold, report=report)


def _slice_weighted(layer, kernel, in_keep, out_keep, bias_add):
    config = layer.get_config()
    config["filters" if "filters" in config else "units"] = int(out_keep.size)
    for key in ("kernel_constraint",):
        config[key] = None
    new_kernel = kernel[..., in_keep, :][..., out_keep]
    weights = [new_kernel]
    if layer.use_bias:
        bias = layer.bias.numpy().astype(np.float64)
        if bias_add is not None:
            bias = bias + bias_add
        weights.append(bias[out_keep].astype(np.float32))
    return type(layer).from_config(config), weights


def _slice_channelwise(layer, keep, channels):
    config = layer.get_config()
    weights = []
    for weight in layer.get_weights():
        if weight.ndim == 0 or weight.shape[-1] == 1:
            weights.append(weight)
        elif weight.shape[-1] == channels:
            weights.append(weight[..., keep])
        else:
            raise ValueError(f"weight of layer {layer.name!r} with shape {weight.shape} is not "
                             f"per-channel over {channels} channels")
    return type(layer).from_config(config), weights


def shrink_model(model, masks: Mapping[str, np.ndarray] | None = None, plan: SurgeryPlan | None = None):
    """Physically smaller copy of ``model`` with the masked kernels applied and empty channels removed.

    Args:
        model: Functional linear chain (see module docstring); its weights are read, not modified.
        masks: layer name -> 0/1 mask shaped like the kernel (e.g. ``icse_channel_prune(...).masks``); kernels not
            named are used as they are (zeros already in a kernel count as pruned).
        plan: a precomputed :func:`plan_shrink` result.
    Returns:
        A new Functional model whose outputs equal the masked model's; ``plan_shrink`` reports what was removed.
    """
    masks = dict(masks or {})
    plan = plan or plan_shrink(model, masks)
    chain = _chain(model)
    inputs = keras.Input(batch_shape=model.input_shape, name=model.inputs[0].name.split(":")[0])
    x = inputs
    channels = model.input_shape[-1]
    in_keep = np.arange(channels)
    pending = []
    for layer in chain:
        if _is_weighted(layer):
            out_keep = plan.keep[layer.name]
            new_layer, weights = _slice_weighted(layer, _kernel(layer, masks), in_keep, out_keep,
                                                 plan.bias_fold.get(layer.name))
            x = new_layer(x)
            pending.append((new_layer, weights))
            channels, in_keep = layer.kernel.shape[-1], out_keep
        else:
            new_layer, weights = _slice_channelwise(layer, in_keep, channels)
            x = new_layer(x)
            pending.append((new_layer, weights))
    shrunk = keras.Model(inputs, x, name=f"{model.name}_shrunk")
    for new_layer, weights in pending:
        new_layer.set_weights(weights)
    return shrunk


__all__ = ["plan_shrink", "shrink_model", "SurgeryPlan"]
