"""TF-GridNet's optimiser and loss (docs/tfgridnet.md#training): Adam with a linear warm-up then cosine decay,
global-norm clipping, and the hybrid loss on every head (PL: one per block).
"""
from __future__ import annotations

import math

def _register_schedule():
    from common.tfkeras import keras, tf

    @keras.utils.register_keras_serializable(package="se")
    class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up to ``max_lr`` over ``warmup_steps``, cosine to ``min_lr`` at ``decay_until_step``, then
        ``min_lr`` (upstream ``scheduler.py`` LinearWarmupCosineAnnealingLR, per optimiser step)."""

        def __init__(self, max_lr, min_lr, warmup_steps, decay_until_step):
            self.max_lr, self.min_lr = float(max_lr), float(min_lr)
            self.warmup_steps, self.decay_until_step = int(warmup_steps), int(decay_until_step)
            if not 0 <= self.warmup_steps < self.decay_until_step:
                raise ValueError(f"warm-up steps {warmup_steps} must be below decay_until_step {decay_until_step}")

        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            warmup = self.max_lr * (step + 1.0) / float(max(self.warmup_steps, 1))
            progress = tf.clip_by_value((step - self.warmup_steps) / float(self.decay_until_step - self.warmup_steps),
                                        0.0, 1.0)
            cosine = self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + tf.cos(math.pi * progress))
            return tf.where(step < self.warmup_steps, warmup, cosine)

        def get_config(self):
            return {"max_lr": self.max_lr, "min_lr": self.min_lr, "warmup_steps": self.warmup_steps,
                    "decay_until_step": self.decay_until_step}

    return WarmupCosineDecay


def compile_model(model, config: dict, outputs: int):
    from common.tfkeras import keras
    from reproductions.tfgridnet.losses import HybridLoss, si_snr

    optimizer_config = config["training"]["optimizer"]
    schedule = _register_schedule()(optimizer_config["max_lr"], optimizer_config["min_lr"],
                                    optimizer_config["warmup_steps"], optimizer_config["decay_until_step"])
    optimizer = keras.optimizers.Adam(schedule, beta_1=optimizer_config["beta_1"], beta_2=optimizer_config["beta_2"],
                                      epsilon=optimizer_config["epsilon"],
                                      global_clipnorm=optimizer_config["gradient_clip_norm"])
    loss = HybridLoss(**config["loss"])
    # SI-SNR of the clean-speech estimate (PL: the last head) for the learning curves
    metrics = [[]] * (outputs - 1) + [[si_snr]] if outputs > 1 else [si_snr]
    model.compile(optimizer, loss=[loss] * outputs if outputs > 1 else loss, metrics=metrics)
    return model
