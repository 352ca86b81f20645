"""Acceleration123/Speech-Enhancement's hybrid loss: compressed-spectrum MSE plus negative SI-SNR / 10, per output.

For an estimate ``s_hat`` and a target ``s`` (both waveforms), with ``X = STFT(x)`` (512 / 256, sqrt-Hann,
centred, as the model's own STFT) and ``m(X) = max(|X|, 1e-8)^0.7``:

    L_stft  = 70 * MSE(m(S_hat), m(S)) + 30 * (MSE(Re S_hat / m(S_hat), Re S / m(S)) + MSE(Im .., Im ..))
    L_sisnr = -2 * log10(||s_t|| / max(||s_hat - s_t||, 1e-8) + 1e-8),   s_t = <s_hat, s> s / (||s||^2 + 1e-8)
    L       = L_stft + w * mean_batch(L_sisnr)          w = ``sisnr_weight``: 1 upstream

``L_stft`` grows with the signal level (the magnitude term as level^1.4) while ``L_sisnr`` does not, so the weight
of the phase-sensitive SI-SNR term is a configuration value (``loss.sisnr_weight``, 1 in the paper configuration).

``X / m(X) = |X|^0.3 e^{j phi}``: the magnitude term compares ``|X|^0.7`` and the complex term the 0.3-compressed
spectrum. ``L_sisnr`` is -SI-SNR(dB)/10 **without** mean removal. MSEs average over batch, frequency and frames.
Progressive learning sums this loss over the five outputs with weight 1 each (Keras sums per-output losses).

References: Acceleration123/Speech-Enhancement ``loss_func.py`` (``loss_stft``, ``loss_sisnr``, ``loss_hybrid``),
``docs/tfgridnet.md#progressive-learning``. SEtrain's HybridLoss differs (magnitude compressed by 0.3, plain Hann
window).
"""
from common.tfkeras import keras, tf
from reproductions.tfgridnet.tfgridnet import TorchStft


@keras.utils.register_keras_serializable(package="se")
class HybridLoss(keras.losses.Loss):
    """``70 MSE(|X|^0.7) + 30 (MSE(Re) + MSE(Im)) of |X|^0.3 e^{j phi}`` minus SI-SNR/10 (see module docstring)."""

    def __init__(self, n_fft=512, hop_length=256, compress_factor=0.7, magnitude_weight=70.0, complex_weight=30.0,
                 eps=1e-8, sisnr_weight=1.0, name="hybrid_loss", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction=keras.losses.Reduction.NONE, **kwargs)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.compress_factor = float(compress_factor)
        self.magnitude_weight = float(magnitude_weight)
        self.complex_weight = float(complex_weight)
        self.eps = float(eps)
        self.sisnr_weight = float(sisnr_weight)
        if not self.sisnr_weight >= 0.0:
            raise ValueError(f"loss.sisnr_weight must be >= 0, got {sisnr_weight!r}")
        self.stft = TorchStft(self.n_fft, self.hop_length, dtype="float32", name=f"{name}_stft")

    def compressed(self, waveform):
        """Return ``(m(X), Re X / m(X), Im X / m(X))`` for a batch of waveforms."""
        spectrum = self.stft(waveform)
        real, imaginary = spectrum[..., 0], spectrum[..., 1]
        # sqrt(max(|X|^2, eps^2)) is torch's |X|.clamp(eps) and keeps the gradient finite at |X| = 0.
        magnitude = tf.sqrt(tf.maximum(tf.square(real) + tf.square(imaginary), self.eps**2))
        compressed_magnitude = tf.pow(magnitude, self.compress_factor)
        return compressed_magnitude, real / compressed_magnitude, imaginary / compressed_magnitude

    def spectral_loss(self, target, estimate):
        target_magnitude, target_real, target_imaginary = self.compressed(target)
        estimate_magnitude, estimate_real, estimate_imaginary = self.compressed(estimate)
        mse = lambda a, b: tf.reduce_mean(tf.square(a - b))  # noqa: E731
        return self.magnitude_weight * mse(estimate_magnitude, target_magnitude) + self.complex_weight * (
            mse(estimate_real, target_real) + mse(estimate_imaginary, target_imaginary)
        )

    def negative_si_snr(self, target, estimate):
        """Per-example ``-SI-SNR/10`` as upstream computes it (no mean removal), shape ``(batch,)``."""
        scale = tf.reduce_sum(target * estimate, axis=-1, keepdims=True) / (
            tf.reduce_sum(tf.square(target), axis=-1, keepdims=True) + self.eps
        )
        projection = scale * target
        # Norms as sqrt(max(sum of squares, floor^2)): torch's clamp, and no NaN gradient at an all-zero vector.
        norm = lambda x, floor: tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(x), axis=-1), floor**2))  # noqa: E731
        ratio = norm(projection, 1e-12) / norm(estimate - projection, self.eps)
        return -2.0 * tf.math.log(ratio + self.eps) / tf.math.log(10.0)

    def call(self, y_true, y_pred):
        y_true = tf.convert_to_tensor(y_true, tf.float32)
        y_pred = tf.convert_to_tensor(y_pred, tf.float32)
        # The spectral MSE is a batch mean; spreading it over the examples keeps Keras' mean reduction exact.
        return self.spectral_loss(y_true, y_pred) + self.sisnr_weight * self.negative_si_snr(y_true, y_pred)

    def __call__(self, y_true, y_pred, sample_weight=None):
        return tf.reduce_mean(self.call(y_true, y_pred))

    def get_config(self):
        return {
            **super().get_config(), "n_fft": self.n_fft, "hop_length": self.hop_length,
            "compress_factor": self.compress_factor, "magnitude_weight": self.magnitude_weight,
            "complex_weight": self.complex_weight, "eps": self.eps, "sisnr_weight": self.sisnr_weight,
        }


@keras.utils.register_keras_serializable(package="se")
def si_snr(y_true, y_pred):
    """Zero-mean SI-SNR in dB per example (``common.metrics.si_snr``), the validation curve's metric."""
    y_true = tf.convert_to_tensor(y_true, tf.float32)
    y_pred = tf.convert_to_tensor(y_pred, tf.float32)
    target = y_true - tf.reduce_mean(y_true, axis=-1, keepdims=True)
    estimate = y_pred - tf.reduce_mean(y_pred, axis=-1, keepdims=True)
    projection = tf.reduce_sum(target * estimate, axis=-1, keepdims=True) / (
        tf.reduce_sum(tf.square(target), axis=-1, keepdims=True) + 1e-8
    ) * target
    residual = estimate - projection
    ratio = tf.reduce_sum(tf.square(projection), axis=-1) / (tf.reduce_sum(tf.square(residual), axis=-1) + 1e-8)
    return 10.0 * tf.math.log(ratio + 1e-8) / tf.math.log(10.0)
