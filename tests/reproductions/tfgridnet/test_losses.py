"""Acceleration123/Speech-Enhancement's hybrid loss against a numpy transcription of loss_func.py
(reproductions/tfgridnet/losses.py)."""
import numpy as np
import pytest

from reproductions.tfgridnet.features import tfgridnet_stft
from common.tfkeras import tf
from reproductions.tfgridnet.losses import HybridLoss, si_snr


def numpy_hybrid_loss(target, estimate, eps=1e-8):
    """upstream loss_func.py: loss_stft (70 |X|^0.7 MSE + 30 complex MSE of X/|X|^0.7) + loss_sisnr, batch (B, T)."""
    spectra_t = np.stack([tfgridnet_stft(row, dtype=np.complex128) for row in target])
    spectra_e = np.stack([tfgridnet_stft(row, dtype=np.complex128) for row in estimate])
    magnitude_t = np.maximum(np.abs(spectra_t), eps) ** 0.7
    magnitude_e = np.maximum(np.abs(spectra_e), eps) ** 0.7
    compressed_t, compressed_e = spectra_t / magnitude_t, spectra_e / magnitude_e
    stft_loss = 70 * np.mean((magnitude_e - magnitude_t) ** 2) + 30 * (
        np.mean((compressed_e.real - compressed_t.real) ** 2) + np.mean((compressed_e.imag - compressed_t.imag) ** 2))
    projection = (np.sum(target * estimate, -1, keepdims=True) * target
                  / (np.sum(target**2, -1, keepdims=True) + eps))
    ratio = np.linalg.norm(projection, axis=-1) / np.maximum(np.linalg.norm(estimate - projection, axis=-1), eps)
    return stft_loss + np.mean(-2 * np.log10(ratio + eps))


def test_hybrid_loss_matches_numpy_formula():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((3, 8000)) * 0.1
    estimate = target + rng.standard_normal((3, 8000)) * 0.05
    ours = float(HybridLoss()(target.astype(np.float32), estimate.astype(np.float32)))
    expected = numpy_hybrid_loss(target.astype(np.float32).astype(np.float64),
                                 estimate.astype(np.float32).astype(np.float64))
    assert ours == pytest.approx(expected, rel=1e-4)


def test_si_snr_term_is_minus_si_snr_over_ten_without_mean_removal():
    rng = np.random.default_rng(1)
    target = rng.standard_normal((1, 4000)) + 3.0  # an offset: upstream does not remove the mean
    noise = rng.standard_normal((1, 4000))
    noise -= (noise @ target.T) / (target @ target.T) * target  # orthogonal to the target
    noise *= np.linalg.norm(target) / np.linalg.norm(noise) / 10 ** (12 / 20)  # 12 dB
    value = float(tf.reduce_mean(HybridLoss().negative_si_snr(tf.constant(target, tf.float32),
                                                             tf.constant(target + noise, tf.float32))))
    assert value == pytest.approx(-1.2, abs=1e-3)


def test_identical_signals_have_zero_spectral_loss():
    signal = np.random.default_rng(2).standard_normal((2, 4000)).astype(np.float32)
    assert float(HybridLoss().spectral_loss(tf.constant(signal), tf.constant(signal))) == pytest.approx(0.0, abs=1e-9)


def test_gradient_is_finite_for_a_silent_estimate():
    target = tf.constant(np.random.default_rng(3).standard_normal((2, 4000)), tf.float32)
    estimate = tf.Variable(tf.zeros((2, 4000)))
    with tf.GradientTape() as tape:
        loss = HybridLoss()(target, estimate)
    gradient = tape.gradient(loss, estimate)
    assert np.isfinite(float(loss))
    assert np.all(np.isfinite(gradient.numpy()))


def test_si_snr_metric_matches_common_metrics():
    from common.metrics import si_snr as numpy_si_snr

    rng = np.random.default_rng(7)
    target = rng.standard_normal((3, 4000)) * 0.1 + 0.02
    estimate = 0.5 * target + rng.standard_normal((3, 4000)) * [[0.01], [0.05], [0.2]]
    ours = si_snr(target.astype(np.float32), estimate.astype(np.float32)).numpy()
    expected = [numpy_si_snr(t, e) for t, e in zip(target, estimate)]
    np.testing.assert_allclose(ours, expected, atol=1e-3)


def test_sisnr_weight_scales_only_the_si_snr_term():
    rng = np.random.default_rng(11)
    target = tf.constant(rng.standard_normal((2, 4000)), tf.float32)
    estimate = tf.constant(rng.standard_normal((2, 4000)), tf.float32) + target
    spectral = float(HybridLoss().spectral_loss(target, estimate))
    negative_si_snr = float(tf.reduce_mean(HybridLoss().negative_si_snr(target, estimate)))
    assert float(HybridLoss()(target, estimate)) == pytest.approx(spectral + negative_si_snr, rel=1e-5)
    assert float(HybridLoss(sisnr_weight=10.0)(target, estimate)) == pytest.approx(
        spectral + 10.0 * negative_si_snr, rel=1e-5)
    assert HybridLoss.from_config(HybridLoss(sisnr_weight=10.0).get_config()).sisnr_weight == 10.0


def test_negative_sisnr_weight_is_refused():
    with pytest.raises(ValueError, match="loss.sisnr_weight"):
        HybridLoss(sisnr_weight=-1.0)
