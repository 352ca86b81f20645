"""Which ops of a .tflite file XNNPACK takes and which run on LiteRT's own kernels: ``python -m benchmarks.graph_ops``.

After the delegate is applied, the interpreter's node list holds the original ops followed by one ``DELEGATE``
node per XNNPACK partition. Each partition is recovered by walking back from its delegate node's outputs through
the producing ops until its inputs are reached; every op not reached runs outside XNNPACK. An op outside splits
the graph into more partitions, and on a full-size tensor it runs on a reference or built-in kernel.
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

__all__ = ["delegate_partitions", "main"]


def delegate_partitions(path, num_threads: int = 1) -> dict:
    """``{"partitions": N, "inside": Counter, "outside": Counter}`` for ``path``; the counters count ops as
    ``"OP:output dtype"`` (the dtype tells int8 ops from float ones)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    interpreter.allocate_tensors()
    wrapper = interpreter._interpreter
    nodes = [(wrapper.NodeName(index), [int(t) for t in wrapper.NodeInputs(index)],
              [int(t) for t in wrapper.NodeOutputs(index)]) for index in range(wrapper.NumNodes())]
    producer = {tensor: index for index, (name, _, outputs) in enumerate(nodes) if name != "DELEGATE"
                for tensor in outputs}
    delegated, partitions = set(), 0
    for name, inputs, outputs in nodes:
        if name != "DELEGATE":
            continue
        partitions += 1
        boundary = set(inputs)
        stack = [producer[tensor] for tensor in outputs if tensor in producer]
        while stack:
            index = stack.pop()
            if index in delegated:
                continue
            delegated.add(index)
            stack += [producer[tensor] for tensor in nodes[index][1]
                      if tensor >= 0 and tensor not in boundary and tensor in producer]
    inside, outside = collections.Counter(), collections.Counter()
    for index, (name, _, outputs) in enumerate(nodes):
        if name == "DELEGATE":
            continue
        dtype = wrapper.TensorType(outputs[0], 0).__name__ if outputs else "none"
        (inside if index in delegated else outside)[f"{name}:{dtype}"] += 1
    return {"partitions": partitions, "inside": inside, "outside": outside}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.graph_ops", description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, nargs="+", help=".tflite files")
    args = parser.parse_args(argv)
    for path in args.files:
        if not path.is_file():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
        result = delegate_partitions(path)
        print(f"{path}: {result['partitions']} XNNPACK partition(s); outside XNNPACK: "
              f"{dict(result['outside']) or 'none'}; inside: {dict(result['inside'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
