"""sednn's feature scaler: one StandardScaler fitted on the mixture inputs, applied to inputs *and* targets.

sednn fits ``sklearn.preprocessing.StandardScaler`` on the packed mixture segments reshaped to
``(segments * n_concat, 257)`` (overlapping frames counted once per segment they appear in) and standardises both
the network inputs and the clean targets with it (``docs/sednn.md#scaler``; users asked
about the targets in yongxuUSTC/sednn#6, Kong answered that only train/test consistency matters, #34). The scaler
travels with the model: :func:`save_to_h5` writes it into the checkpoint file itself, next to the Keras weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from sklearn.preprocessing import StandardScaler

H5_GROUP = "sednn_scaler"


@dataclass
class Scaler:
    """Per-frequency mean and scale (``x_scaled = (x - mean) / scale``)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, packed_inputs: np.ndarray) -> "Scaler":
        """Fit on packed mixture inputs ``(segments, n_concat, freq)`` exactly as sednn's ``compute_scaler``."""
        packed_inputs = np.asarray(packed_inputs)
        if packed_inputs.ndim != 3 or len(packed_inputs) == 0:
            raise ValueError(f"Scaler.fit expects non-empty (segments, n_concat, freq), got {packed_inputs.shape}")
        frames = packed_inputs.reshape(-1, packed_inputs.shape[-1])
        fitted = StandardScaler(with_mean=True, with_std=True).fit(frames)
        return cls(mean=fitted.mean_.astype(np.float32), scale=fitted.scale_.astype(np.float32))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Standardise features whose last axis is frequency (inputs ``(n, 7, F)`` or targets ``(n, F)``)."""
        return ((np.asarray(features, dtype=np.float32) - self.mean) / self.scale).astype(np.float32)

    def inverse_transform(self, features: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform` (sednn ``inverse_scale_on_2d``: ``x * scale + mean``)."""
        return (np.asarray(features, dtype=np.float32) * self.scale + self.mean).astype(np.float32)

    def save_to_h5(self, path: Path) -> None:
        """Store the scaler inside an existing HDF5 file (a Keras checkpoint), replacing an older copy."""
        with h5py.File(path, "a") as handle:
            if H5_GROUP in handle:
                del handle[H5_GROUP]
            group = handle.create_group(H5_GROUP)
            group.create_dataset("mean", data=self.mean)
            group.create_dataset("scale", data=self.scale)

    @classmethod
    def load_from_h5(cls, path: Path) -> "Scaler":
        """Read the scaler that :meth:`save_to_h5` put into ``path``."""
        with h5py.File(path, "r") as handle:
            if H5_GROUP not in handle:
                raise ValueError(f"{path}: no '{H5_GROUP}' group; this checkpoint was not written by the sednn recipe")
            return cls(mean=handle[H5_GROUP]["mean"][()], scale=handle[H5_GROUP]["scale"][()])

    def save_npz(self, path: Path) -> None:
        """Write the scaler beside an exported .tflite model (which cannot hold it)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, mean=self.mean, scale=self.scale)

    @classmethod
    def load_npz(cls, path: Path) -> "Scaler":
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: scaler file missing; run the export stage again")
        with np.load(path) as data:
            return cls(mean=data["mean"], scale=data["scale"])
