"""LSTM-2, the causal LSTM baseline of Tan & Wang (Interspeech 2018): 161 -> 4 x LSTM 1024 -> 161.

The paper's LSTM-2 takes the current noisy magnitude frame only (LSTM-1 adds a 10-frame past context) and is
trained exactly like the CRN (same features, target, loss and optimiser): ``docs/crn.md#baselines``
(architecture and 30.22 M parameters from a third-party summary of the paper; the count is confirmed by arithmetic:
30,217,377 with PyTorch's two LSTM biases). The output layer
is a dense layer with softplus, the CRN's output non-linearity, because the target is a non-negative
magnitude; the summary does not name the baseline's output activation.

Args (``build_lstm_baseline``):
    frequency_bins: STFT bins F (161).
    units: LSTM width (1024).
    lstm_layers: number of stacked unidirectional LSTM layers (4).
    fused_lstm: build the LSTMs as ``common.recurrent.LSTM`` (same weights, faster CPU training).

Shape:
    input ``(batch, frames, F)`` noisy magnitude; output ``(batch, frames, F)`` estimated clean magnitude.

Returns:
    A Functional ``keras.Model``; Keras counts 30,200,993 parameters (one bias per gate), PyTorch 30,217,377.

References:
    K. Tan and D. L. Wang, Interspeech 2018, table of baselines (LSTM-1, LSTM-2).
"""
from common.config import check_keys
from common.recurrent import lstm
from common.tfkeras import keras, layers

PAPER_UNITS = 1024
PAPER_LAYERS = 4
PAPER_KERAS_PARAMETERS = 30_200_993
PAPER_PYTORCH_PARAMETERS = 30_217_377


def build_lstm_baseline(
    frequency_bins=161, units=PAPER_UNITS, lstm_layers=PAPER_LAYERS, name="lstm2", fused_lstm=False
):
    """Build the LSTM-2 baseline; see the module docstring."""
    if units < 1 or lstm_layers < 1:
        raise ValueError(
            f"units and lstm_layers must be positive, got {units}, {lstm_layers}"
        )
    noisy = keras.Input((None, frequency_bins), name="noisy_magnitude")
    x = noisy
    for index in range(1, lstm_layers + 1):
        x = lstm(units, fused_lstm, return_sequences=True, name=f"lstm{index}")(x)
    enhanced = layers.Dense(frequency_bins, activation="softplus", dtype="float32", name="enhanced_magnitude")(x)
    return keras.Model(noisy, enhanced, name=name)


BASELINE_KEYS = ("units", "lstm_layers")


def build_from_config(baseline_section, frequency_bins, fused_lstm=False, name="lstm2", source=None):
    """Build LSTM-2 from the ``baseline:`` section of ``conf/*.yaml`` (every key of ``BASELINE_KEYS``).

    ``frequency_bins`` is the CRN's ``model.frequency_bins``: both models read the same features. ``source`` is
    the configuration file that the errors name (``config["config_path"]``).
    """
    check_keys(baseline_section, "baseline", BASELINE_KEYS, source=source)
    return build_lstm_baseline(frequency_bins, baseline_section["units"], baseline_section["lstm_layers"], name=name,
                               fused_lstm=fused_lstm)


def lstm_baseline_macs_per_frame(frequency_bins=161, units=PAPER_UNITS, lstm_layers=PAPER_LAYERS):
    """Multiply-accumulates per frame: LSTM gates (input and recurrent matrices) plus the output layer."""
    macs = 4 * units * (frequency_bins + units)
    macs += (lstm_layers - 1) * 4 * units * (2 * units)
    return macs + units * frequency_bins
