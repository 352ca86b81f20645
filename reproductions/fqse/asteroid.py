"""asteroid's Conv-TasNet checkpoint (``pytorch_model.bin``) mapped onto the float Keras core
(docs/fqse.md#model), for ``train --init-from-asteroid``.
"""
from __future__ import annotations

import re

import numpy as np


def asteroid_state_to_core(state: dict, core) -> int:
    """Copy an asteroid ConvTasNet state dict (numpy arrays or tensors by name) into a float core.

    Keys follow asteroid 0.6 (``encoder.filterbank._filters``, ``masker.bottleneck.{0,1}``,
    ``masker.TCN.{i}.shared_block.{0..5}``, ``res_conv``, ``skip_conv``, ``masker.mask_net.{0,1}``,
    ``decoder.filterbank._filters``). Every tensor is used exactly once; returns the number copied.
    """
    state = {key: np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, np.float32)
             for key, value in state.items()}
    used = set()

    def take(key, shape):
        if key not in state:
            raise ValueError(f"asteroid state dict: missing {key}")
        value = state[key]
        if int(np.prod(value.shape)) != int(np.prod(shape)):
            raise ValueError(f"asteroid state dict: {key} has shape {value.shape}, expected {shape} elements")
        used.add(key)
        return value

    def conv(key, layer):  # torch (out, in, k) -> (1, k, in, out)
        kernel = take(f"{key}.weight", layer.kernel.shape)
        weights = [kernel.transpose(2, 1, 0)[None]]
        weights.append(take(f"{key}.bias", layer.bias.shape))
        return weights

    layers_by_name = {layer.name: layer for layer in core.layers}
    encoder = take("encoder.filterbank._filters", layers_by_name["encoder"].kernel.shape)  # (N, 1, L)
    layers_by_name["encoder"].set_weights([encoder.transpose(2, 1, 0)[None]])
    decoder = take("decoder.filterbank._filters", layers_by_name["decoder"].kernel.shape)  # (N, 1, L) in, out, k
    layers_by_name["decoder"].set_weights([decoder.transpose(2, 1, 0)[None]])
    norm = layers_by_name["bottleneck_norm"]
    norm.set_weights([take("masker.bottleneck.0.gamma", norm.gamma.shape).reshape(-1),
                      take("masker.bottleneck.0.beta", norm.beta.shape).reshape(-1)])
    layers_by_name["bottleneck_conv"].set_weights(conv("masker.bottleneck.1", layers_by_name["bottleneck_conv"]))
    block_names = [re.fullmatch(r"(block_(\d+)_(\d+))_conv_in", name) for name in layers_by_name]
    blocks = [match.group(1) for match in sorted((match for match in block_names if match),
                                                  key=lambda match: (int(match.group(2)), int(match.group(3))))]
    for index, prefix in enumerate(blocks):
        key = f"masker.TCN.{index}"
        conv_in = layers_by_name[f"{prefix}_conv_in"]
        layers_by_name[f"{prefix}_conv_in"].set_weights(
            conv(f"{key}.shared_block.0", conv_in) + [take(f"{key}.shared_block.1.weight", (1,)).reshape(1, 1)])
        for norm_name, position in (("norm_in", 2), ("norm_out", 5)):
            norm = layers_by_name[f"{prefix}_{norm_name}"]
            norm.set_weights([take(f"{key}.shared_block.{position}.gamma", norm.gamma.shape).reshape(-1),
                              take(f"{key}.shared_block.{position}.beta", norm.beta.shape).reshape(-1)])
        depthwise = layers_by_name[f"{prefix}_depthwise"]
        kernel = take(f"{key}.shared_block.3.weight", depthwise.kernel.shape)  # (C, 1, P)
        depthwise.set_weights([kernel[:, 0, :].T.reshape(depthwise.kernel.shape),
                               take(f"{key}.shared_block.3.bias", depthwise.bias.shape),
                               take(f"{key}.shared_block.4.weight", (1,)).reshape(1, 1)])
        layers_by_name[f"{prefix}_residual"].set_weights(conv(f"{key}.res_conv", layers_by_name[f"{prefix}_residual"]))
        layers_by_name[f"{prefix}_skip"].set_weights(conv(f"{key}.skip_conv", layers_by_name[f"{prefix}_skip"]))
    layers_by_name["mask_prelu"].set_weights([take("masker.mask_net.0.weight", (1,)).reshape(1, 1)])
    layers_by_name["mask_conv"].set_weights(conv("masker.mask_net.1", layers_by_name["mask_conv"]))
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(f"asteroid state dict: tensors not used by this configuration: {unused[:5]}")
    return len(used)


def load_asteroid_checkpoint(path) -> dict:
    """asteroid's ``pytorch_model.bin`` (a serialized package with ``state_dict``) as a dict (needs torch)."""
    try:
        import torch
    except ImportError as error:
        raise ValueError(f"{path}: reading a PyTorch checkpoint needs the 'torch' package") from error
    package = torch.load(str(path), map_location="cpu")
    return package.get("state_dict", package)
