"""Xu et al.'s regression DNN as in Kong's Keras port (sednn ``mixture2clean_dnn``).

The network maps a context window of ``n_concat`` standardised noisy log-magnitude frames to the standardised clean
log-magnitude of the centre frame:

    x_t = [Y_{t-3}, ..., Y_{t+3}]           (7 x 257, flattened to 1799)
    h_1 = Dropout_0.2(ReLU(W_1 x_t + b_1))  (2048)
    h_2 = Dropout_0.2(ReLU(W_2 h_1 + b_2))  (2048)
    h_3 = Dropout_0.2(ReLU(W_3 h_2 + b_3))  (2048)
    S_t = W_4 h_3 + b_4                     (257, linear)

Args:
    n_concat: frames of context (7 in sednn's ``runme.sh``).
    n_freq: frequency bins (257 = 512-point FFT at 16 kHz, sednn ``config.py``).
    hidden_units: width of each hidden layer (2048).
    hidden_layers: number of hidden layers (3).
    dropout: dropout rate after each hidden layer (0.2).

Shape:
    input ``(batch, n_concat, n_freq)``; output ``(batch, n_freq)``.

Returns:
    A Functional ``keras.Model``; with the defaults it has 1799*2048+2048 + 2*(2048^2+2048) + 2048*257+257
    = 12,605,697 parameters (``docs/sednn.md#model``).

References:
    Y. Xu, J. Du, L.-R. Dai, C.-H. Lee, "A regression approach to speech enhancement based on deep neural networks",
    IEEE/ACM TASLP 23(1), 2015. Q. Kong, yongxuUSTC/sednn ``mixture2clean_dnn/main_dnn.py`` L99-115 (Keras 2.2.4
    defaults: glorot-uniform kernels, zero biases), see ``docs/sednn.md#model``.
    Xu's own C++ system used sigmoid units, 11 frames and 8 kHz (``docs/sednn.md#paper``); this file follows sednn, the
    project's reference.
"""
from common.config import check_keys
from common.tfkeras import keras, layers

PAPER_PARAMETERS = 12_605_697


def build_sednn_dnn(n_concat=7, n_freq=257, hidden_units=2048, hidden_layers=3, dropout=0.2, name="sednn_dnn"):
    """Build the sednn DNN (see the module docstring)."""
    for key, value in (("n_concat", n_concat), ("n_freq", n_freq), ("hidden_units", hidden_units),
                       ("hidden_layers", hidden_layers)):
        if int(value) != value or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    inputs = keras.Input(shape=(int(n_concat), int(n_freq)), name="noisy_log_magnitude_context")
    hidden = layers.Flatten(name="flatten")(inputs)
    for index in range(1, int(hidden_layers) + 1):
        hidden = layers.Dense(int(hidden_units), activation="relu", name=f"dense_{index}")(hidden)
        hidden = layers.Dropout(dropout, name=f"dropout_{index}")(hidden)
    outputs = layers.Dense(int(n_freq), activation="linear", dtype="float32", name="clean_log_magnitude")(hidden)
    return keras.Model(inputs, outputs, name=name)


MODEL_KEYS = ("n_concat", "n_freq", "hidden_units", "hidden_layers", "dropout")


def build_from_config(model_section, source=None):
    """Build the DNN from the ``model:`` section of ``conf/*.yaml``, which must hold every key of ``MODEL_KEYS``.

    ``source`` is the configuration file that the errors name (``config["config_path"]``).
    """
    check_keys(model_section, "model", MODEL_KEYS, source=source)
    return build_sednn_dnn(**model_section)
