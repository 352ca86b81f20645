"""sednn's scaler: fitted on mixture inputs, applied to inputs and targets, stored inside the checkpoint."""
import numpy as np
import pytest

from reproductions.sednn.scaler import Scaler


def test_fit_is_per_frequency_over_all_frames_of_all_segments():
    rng = np.random.default_rng(1)
    packed = rng.normal(loc=3.0, scale=2.0, size=(40, 7, 257)).astype(np.float32)
    scaler = Scaler.fit(packed)
    frames = packed.reshape(-1, 257).astype(np.float64)  # overlapping frames counted once per segment, as sednn
    np.testing.assert_allclose(scaler.mean, frames.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(scaler.scale, frames.std(axis=0), rtol=1e-5)  # ddof 0 (sklearn)


def test_inputs_and_targets_use_the_mixture_statistics():
    rng = np.random.default_rng(2)
    mixture = rng.normal(loc=-2.0, scale=1.5, size=(10, 7, 4)).astype(np.float32)
    clean_targets = rng.normal(loc=-5.0, scale=0.5, size=(10, 4)).astype(np.float32)
    scaler = Scaler.fit(mixture)
    mean = mixture.reshape(-1, 4).mean(axis=0)
    std = mixture.reshape(-1, 4).std(axis=0)
    np.testing.assert_allclose(scaler.transform(mixture), (mixture - mean) / std, rtol=1e-4, atol=1e-5)
    # The targets are scaled with the *mixture* mean and std (sednn main_dnn.py scale_on_2d(tr_y)), so they are
    # not zero-mean: the clean speech is quieter than the mixture.
    scaled_targets = scaler.transform(clean_targets)
    np.testing.assert_allclose(scaled_targets, (clean_targets - mean) / std, rtol=1e-4, atol=1e-5)
    assert np.all(scaled_targets.mean(axis=0) < -1.0)
    np.testing.assert_allclose(scaler.inverse_transform(scaled_targets), clean_targets, rtol=1e-5, atol=1e-5)


def test_constant_bins_keep_scale_one():
    packed = np.zeros((3, 7, 2), np.float32)
    packed[..., 1] = np.arange(21, dtype=np.float32).reshape(3, 7)
    scaler = Scaler.fit(packed)
    assert scaler.scale[0] == 1.0  # sklearn leaves zero-variance features unscaled


def test_saved_inside_an_h5_file_and_as_npz(tmp_path):
    import h5py

    scaler = Scaler(mean=np.arange(257, dtype=np.float32), scale=np.full(257, 2.0, np.float32))
    checkpoint = tmp_path / "md_5000iters.h5"
    with h5py.File(checkpoint, "w") as handle:
        handle.create_group("model_weights")
    scaler.save_to_h5(checkpoint)
    scaler.save_to_h5(checkpoint)  # overwriting an older copy works
    loaded = Scaler.load_from_h5(checkpoint)
    np.testing.assert_array_equal(loaded.mean, scaler.mean)
    np.testing.assert_array_equal(loaded.scale, scaler.scale)
    scaler.save_npz(tmp_path / "model.scaler.npz")
    np.testing.assert_array_equal(Scaler.load_npz(tmp_path / "model.scaler.npz").scale, scaler.scale)
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle.create_group("model_weights")
    with pytest.raises(ValueError, match="other.h5"):
        Scaler.load_from_h5(tmp_path / "other.h5")


def test_fit_rejects_bad_shapes():
    with pytest.raises(ValueError, match="Scaler.fit"):
        Scaler.fit(np.zeros((5, 257)))
