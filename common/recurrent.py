"""An LSTM that trains faster on CPU with exactly the weights of ``keras.layers.LSTM``.

Keras' CPU LSTM is a ``while_loop`` whose every step runs the input and the recurrent matmul, and whose gradient is
TensorFlow's automatic differentiation of that loop. :class:`LSTM` here is a ``keras.layers.LSTM`` subclass (same
variables ``kernel``, ``recurrent_kernel``, ``bias`` under ``<name>/lstm_cell/``, gate order i, f, c, o, same
config) whose ``call`` runs one of two kernels, chosen by the width because each wins at one end:

* ``units < BLOCK_KERNEL_MAX_UNITS``: TensorFlow's ``BlockLSTM`` op, the whole sequence and its gradient in one
  op each. Its gate layout is i, c, f, o, so the Keras kernel and bias columns are permuted on the way in (a
  gather, differentiated like any other op). ``BlockLSTMV2`` takes the Keras layout but its registered gradient
  returns the gate gradients in the i, c, f, o layout (wrong weight gradients, checked on TF 2.21), so it is not
  used. The op has float32 and float16 kernels only: other compute dtypes run it in float32.
* otherwise: the input projection ``x W + b`` of all steps in one matmul, a loop of the recurrent matmul only, and a
  hand-written gradient: one reverse loop of ``dz_t U^T``, then the recurrent-kernel gradient in one matmul over all
  steps. At 1024 units the per-step matmuls of the other two kernels read the weights from memory at every step.

Both equal ``keras.layers.LSTM`` within float32 rounding, outputs and gradients, forward and ``go_backwards``, with
and without an initial state (tests/common/test_recurrent.py). Masks, dropout, stateful, unrolled, time-major layers
and other activations fall back to the Keras ``call``. The layer works inside ``keras.layers.Bidirectional``, which
rebuilds the backward copy from the config. The class is named ``LSTM`` because Keras derives default layer names
and the keys of ``.weights.h5`` files from the class name: so a checkpoint saved with either layer loads into the
other.

Measured speed-up of one layer, forward + backward (gradients w.r.t. inputs and weights), median of 7 interleaved
runs against ``keras.layers.LSTM`` on the 2-core development machine while other jobs ran on it
(``python -m common.recurrent --batch B --steps T --features I --units U``):

* TF-GridNet mini intra-frame BLSTM direction (B 252, T 127, I 64, U 16): 1.8x (block kernel);
* TF-GridNet mini inter-frame (B 1020, T 31, I 64, U 16): 1.4x (block kernel);
* CRN mini (B 16, T 250, I 128, U 128): 1.0x (projection kernel; the block kernel 0.8x);
* CRN paper (B 16, T 300, I 1024, U 1024): 2.1x (projection kernel; the block kernel 0.6x).

Whole training steps (``train_on_batch``, Adam), the recipes' models built with ``fused_lstm`` False and True, runs
interleaved, same machine: TF-GridNet mini (batch 4 x 1 s) 1.0-1.7x, CRN mini (16 x 251 frames) 1.1-1.3x, LSTM-2
mini 1.5-1.8x (medians of 10 in each of two runs under different loads), CRN paper (16 x 301 frames) 2.1x (median
of 3). The step is never slower; the load of the shared machine moves the ratio as much as the kernel does.

Args (``LSTM``): those of ``keras.layers.LSTM``.

Shape:
    input ``(batch, steps, features)``; output ``(batch, steps, units)`` with ``return_sequences``, else
    ``(batch, units)``; with ``return_state`` also the final ``h`` and ``c``, each ``(batch, units)``.

Returns:
    A layer whose checkpoints, ``get_weights`` order and streaming/TFLite exports are those of ``keras.layers.LSTM``
    (export models are built with the plain layer, ``fused_lstm=False``, and given the same weights).

References:
    S. Hochreiter and J. Schmidhuber, "Long short-term memory", Neural Computation 1997; TensorFlow
    ``tensorflow/core/kernels/rnn/lstm_ops.cc`` (BlockLSTM, its gradient and gate layouts).
"""
import argparse
import time

import numpy as np

from common.tfkeras import keras, tf

# Below this width the one-op BlockLSTM is fastest (per-step TensorFlow op overhead dominates); from it on the
# projection kernel is (per-step weight traffic dominates).
BLOCK_KERNEL_MAX_UNITS = 128
BLOCK_KERNEL_DTYPES = (tf.float16, tf.float32)


def _keras_to_block_layout(matrix):
    """Columns i, f, c, o (Keras) -> i, c, f, o (BlockLSTM) along the last axis."""
    input_gate, forget_gate, candidate, output_gate = tf.split(matrix, 4, axis=-1)
    return tf.concat([input_gate, candidate, forget_gate, output_gate], axis=-1)


def block_lstm(sequence, initial_h, initial_c, kernel, recurrent_kernel, bias):
    """LSTM over a time-major ``sequence (steps, batch, features)`` with TensorFlow's BlockLSTM op.

    Returns ``(outputs, cells)``, each ``(steps, batch, units)``: the hidden and the cell state of every step.
    """
    compute_dtype = sequence.dtype
    dtype = compute_dtype if compute_dtype in BLOCK_KERNEL_DTYPES else tf.float32
    weights = _keras_to_block_layout(tf.concat([kernel, recurrent_kernel], axis=0))
    no_peephole = tf.zeros([recurrent_kernel.shape[0]], dtype)
    result = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(sequence)[0], tf.int64),
        x=tf.cast(sequence, dtype),
        cs_prev=tf.cast(initial_c, dtype),
        h_prev=tf.cast(initial_h, dtype),
        w=tf.cast(weights, dtype),
        wci=no_peephole,
        wcf=no_peephole,
        wco=no_peephole,
        b=tf.cast(_keras_to_block_layout(bias), dtype),
        forget_bias=0.0,
        cell_clip=-1.0,  # negative: no clipping, as Keras
        use_peephole=False,
    )
    return tf.cast(result.h, compute_dtype), tf.cast(result.cs, compute_dtype)


@tf.custom_gradient
def _recurrence(projections, recurrent_kernel, initial_h, initial_c):
    """The recurrent part of the LSTM given ``projections = x W + b`` of every step, ``(steps, batch, 4 units)``."""
    steps = tf.shape(projections)[0]
    units = recurrent_kernel.shape[0]
    dtype = projections.dtype

    def forward_step(step, hidden, cell, hiddens, cells):
        gates = projections[step] + tf.matmul(hidden, recurrent_kernel)
        sigmoids = tf.sigmoid(gates)
        candidate = tf.tanh(gates[:, 2 * units : 3 * units])
        cell = sigmoids[:, units : 2 * units] * cell + sigmoids[:, :units] * candidate
        hidden = sigmoids[:, 3 * units :] * tf.tanh(cell)
        return step + 1, hidden, cell, hiddens.write(step, hidden), cells.write(step, cell)

    _, last_h, last_c, hiddens, cells = tf.while_loop(
        lambda step, *_: step < steps,
        forward_step,
        (0, initial_h, initial_c, tf.TensorArray(dtype, size=steps), tf.TensorArray(dtype, size=steps)),
    )
    outputs, cell_states = hiddens.stack(), cells.stack()

    def gradient(d_outputs, d_last_h, d_last_c):
        # Everything that does not depend on the reverse recursion is computed for all steps at once.
        previous_h = tf.concat([initial_h[None], outputs[:-1]], axis=0)
        previous_c = tf.concat([initial_c[None], cell_states[:-1]], axis=0)
        gates = projections + tf.einsum("tbu,ug->tbg", previous_h, recurrent_kernel)
        sigmoids = tf.sigmoid(gates)
        input_gate = sigmoids[..., :units]
        forget_gate = sigmoids[..., units : 2 * units]
        output_gate = sigmoids[..., 3 * units :]
        candidate = tf.tanh(gates[..., 2 * units : 3 * units])
        tanh_cell = tf.tanh(cell_states)
        cell_from_hidden = output_gate * (1.0 - tf.square(tanh_cell))
        # d gates = [dc, dc, dc, dh] * these factors (derivatives of i, f, c, o through their activations).
        gate_factors = tf.concat(
            [
                candidate * input_gate * (1.0 - input_gate),
                previous_c * forget_gate * (1.0 - forget_gate),
                input_gate * (1.0 - tf.square(candidate)),
                tanh_cell * output_gate * (1.0 - output_gate),
            ],
            axis=-1,
        )

        def backward_step(step, carry_h, carry_c, d_gates):
            d_hidden = d_outputs[step] + carry_h
            d_cell = carry_c + d_hidden * cell_from_hidden[step]
            d_gate = tf.concat([d_cell, d_cell, d_cell, d_hidden], axis=-1) * gate_factors[step]
            carry_h = tf.matmul(d_gate, recurrent_kernel, transpose_b=True)
            return step - 1, carry_h, d_cell * forget_gate[step], d_gates.write(step, d_gate)

        _, d_initial_h, d_initial_c, d_gates = tf.while_loop(
            lambda step, *_: step >= 0,
            backward_step,
            (
                steps - 1,
                tf.zeros_like(initial_h) if d_last_h is None else d_last_h,
                tf.zeros_like(initial_c) if d_last_c is None else d_last_c,
                tf.TensorArray(dtype, size=steps),
            ),
        )
        d_projections = d_gates.stack()
        d_recurrent_kernel = tf.einsum("tbu,tbg->ug", previous_h, d_projections)
        return d_projections, d_recurrent_kernel, d_initial_h, d_initial_c

    return (outputs, last_h, last_c), gradient


def projection_lstm(sequence, initial_h, initial_c, kernel, recurrent_kernel, bias):
    """LSTM over a time-major ``sequence (steps, batch, features)``: all input projections in one matmul first.

    Returns ``(outputs, cells_last)``: the hidden state of every step ``(steps, batch, units)`` and the final cell
    state ``(batch, units)``.
    """
    projections = tf.einsum("tbi,ig->tbg", sequence, kernel) + bias
    outputs, _, last_c = _recurrence(projections, recurrent_kernel, initial_h, initial_c)
    return outputs, last_c


@keras.utils.register_keras_serializable(package="se")
class LSTM(keras.layers.LSTM):
    """``keras.layers.LSTM`` with a faster CPU training path; see the module docstring."""

    def _fusable(self, inputs, mask):
        cell = self.cell
        return (
            mask is None
            and not isinstance(inputs, tf.RaggedTensor)
            and not self.stateful
            and not self.unroll
            and not self.time_major
            and cell.use_bias
            and cell.dropout == 0
            and cell.recurrent_dropout == 0
            and cell.activation in (keras.activations.tanh, tf.tanh)
            and cell.recurrent_activation in (keras.activations.sigmoid, tf.sigmoid)
        )

    def call(self, inputs, mask=None, training=None, initial_state=None):
        if isinstance(mask, list):
            mask = mask[0]
        if not self._fusable(inputs, mask):
            return super().call(inputs, mask=mask, training=training, initial_state=initial_state)
        inputs, initial_state, _ = self._process_inputs(inputs, initial_state, None)
        initial_h, initial_c = (tf.cast(state, inputs.dtype) for state in initial_state)
        sequence = tf.transpose(inputs, [1, 0, 2])
        if self.go_backwards:
            sequence = tf.reverse(sequence, [0])
        # Read as tensors: under a mixed precision policy this casts them to the compute dtype, as Keras does.
        cell = self.cell
        weights = [tf.convert_to_tensor(weight) for weight in (cell.kernel, cell.recurrent_kernel, cell.bias)]
        if self.units < BLOCK_KERNEL_MAX_UNITS:
            outputs, cells = block_lstm(sequence, initial_h, initial_c, *weights)
            last_c = cells[-1]
        else:
            outputs, last_c = projection_lstm(sequence, initial_h, initial_c, *weights)
        last_h = outputs[-1]
        output = tf.transpose(outputs, [1, 0, 2]) if self.return_sequences else last_h
        return [output, last_h, last_c] if self.return_state else output


def lstm(units, fused_lstm=False, **kwargs):
    """This module's ``LSTM(units, **kwargs)`` when ``fused_lstm`` else ``keras.layers.LSTM(units, **kwargs)``."""
    return (LSTM if fused_lstm else keras.layers.LSTM)(units, **kwargs)


def fused_lstm_setting(config):
    """``training.fused_lstm`` of a recipe configuration (False when absent); ValueError unless a boolean."""
    value = config.get("training", {}).get("fused_lstm", False)
    if not isinstance(value, bool):
        source = config.get("config_path", "the configuration")
        raise ValueError(f"{source}: training.fused_lstm must be true or false, got {value!r}")
    return value


def time_training_step(layer_class, batch, steps, features, units, bidirectional=False, seed=0):
    """A traced forward + backward step of one (B)LSTM layer built from ``layer_class``, with its input."""
    keras.utils.set_random_seed(seed)
    layer = layer_class(units, return_sequences=True)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer)
    layer.build((None, None, features))
    inputs = tf.constant(np.random.default_rng(seed).standard_normal((batch, steps, features)), tf.float32)

    @tf.function
    def step(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(tf.square(layer(inputs)))
        return tape.gradient(loss, [inputs] + layer.trainable_weights)

    return step, inputs


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m common.recurrent",
        description="Median forward + backward time of keras.layers.LSTM and the fused LSTM, runs interleaved.",
    )
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--features", type=int, required=True)
    parser.add_argument("--units", type=int, required=True)
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    shape = (args.batch, args.steps, args.features, args.units)
    if min(shape) < 1 or args.repeats < 1:
        raise ValueError(
            f"python -m common.recurrent: sizes and --repeats must be positive, got {shape}, {args.repeats}"
        )
    steps = {
        name: time_training_step(layer_class, *shape, bidirectional=args.bidirectional)
        for name, layer_class in (("keras", keras.layers.LSTM), ("fused", LSTM))
    }
    for step, inputs in steps.values():
        step(inputs)  # trace
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, (step, inputs) in steps.items():
            started = time.perf_counter()
            step(inputs)[0].numpy()
            times[name].append(time.perf_counter() - started)
    median = {name: float(np.median(values)) for name, values in times.items()}
    kernel = "block" if args.units < BLOCK_KERNEL_MAX_UNITS else "projection"
    print(f"batch {args.batch}, steps {args.steps}, features {args.features}, units {args.units}"
          f"{', bidirectional' if args.bidirectional else ''}: keras {median['keras'] * 1e3:.1f} ms, "
          f"fused ({kernel} kernel) {median['fused'] * 1e3:.1f} ms, speed-up {median['keras'] / median['fused']:.2f}x "
          f"(median of {args.repeats})")


if __name__ == "__main__":
    main()
