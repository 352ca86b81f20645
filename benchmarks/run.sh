#!/usr/bin/env bash
# The compression and deployment benchmark across the five reproductions: run it after them.
#
#   bash benchmarks/run.sh                  mini configs: reads exp/<name>/mini/, writes results/benchmark/mini/
#   bash benchmarks/run.sh --config paper   the paper-config models a user has trained
#   bash benchmarks/run.sh --force          measure again (stage markers otherwise skip a finished measurement)
#   python -m benchmarks run --no-memory    stage 2 without the peak-memory column (it starts one fresh process per
#                                           variant after the timings, about 8-13 s each on two cores: TF import)
#
# Models or variants whose artefacts are missing are listed as "not trained yet: run bash reproductions/<name>/run.sh".
recipe=benchmark
stage_titles=(
  [0]="data: the embedded mini corpus (test clips)"
  [1]="list the variants and their artefacts"
  [2]="measure quality, size, speed; ONNX Runtime / PyTorch comparisons; table, results.json/csv, frontier.png"
  [3]="print the table and the targets"
)
stage_0() { "$PYTHON" -m data_prep.build_mini; }
stage_1() { "$PYTHON" -m benchmarks status --config "$config" ${set_arguments[@]+"${set_arguments[@]}"}; }
stage_2() { "$PYTHON" -m benchmarks run --config "$config" ${set_arguments[@]+"${set_arguments[@]}"}; }
stage_3() { "$PYTHON" -m benchmarks table --config "$config" ${set_arguments[@]+"${set_arguments[@]}"}; }

# Deployment figures on glibc's malloc: TCMalloc (common/allocator.sh) keeps freed pages resident, so the peak
# resident memory of a variant would miss what reuses them.
export SE_ALLOCATOR="${SE_ALLOCATOR:-system}"
source "$(dirname "${BASH_SOURCE[0]}")/../common/stages.sh"
run_stages "$@"
