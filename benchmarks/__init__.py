"""One compression and deployment benchmark across the five reproductions.

For every model (ICSE's FCN, FQSE's Conv-TasNet, sednn's DNN, the CRN, TF-GridNet) and every variant a reproduction
has left in ``exp/<name>/<config>/`` (float Keras, float .tflite, pruned, clustered, pruned+clustered, PTQ int8,
QAT int8, FQSE, ICSE PP+PQ) the benchmark measures, on one shared test set: quality (PESQ WB, STOI, SI-SNR
improvement, DNSMOS OVRL), size (parameters, non-zero parameters, .tflite and gzip bytes), speed (real-time factor
on 1 thread and on all threads, median of repeated runs with the spread, peak memory, CRN latency per 10 ms hop)
and MACs per second of audio; it then times the same float graph in ONNX Runtime (tf2onnx export) and the same
Conv-TasNet in PyTorch (weight-for-weight port) where those are installed.

Modules: :mod:`benchmarks.timing` (repeated timing, peak memory), :mod:`benchmarks.pareto` (frontier),
:mod:`benchmarks.plot` (PNG), :mod:`benchmarks.onnx_compare` (tf2onnx + ONNX Runtime), :mod:`benchmarks.torch_port`
(Keras graph -> PyTorch), :mod:`benchmarks.models` (per-reproduction adapters), :mod:`benchmarks.benchmark`
(the run, the table, results.json/csv). ``bash benchmarks/run.sh`` or ``python -m benchmarks --help``.
"""
