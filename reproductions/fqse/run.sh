#!/usr/bin/env bash
# FQSE (Cohen, Habi, Netzer, Interspeech 2023): float Conv-TasNet, vanilla 8-bit QAT, FQSE 8-bit, int8 TFLite.
# Usage: bash reproductions/fqse/run.sh [--config mini|paper|PATH] [--stage N] [--stop-stage N] [--force] [--help]
# Spec: docs/fqse.md. Stage timings go to exp/fqse/<config>/stages/times.tsv.
set -euo pipefail

recipe=fqse
stage_titles=(
  [0]="data (embedded mini corpus; the paper config reads LibriMix from data.librimix_root)"
  [1]="train the float Conv-TasNet"
  [2]="vanilla QAT 8-bit from the float model"
  [3]="FQSE 8-bit (augmentation, splitter, RQB, learned ranges) from the float model"
  [4]="export both 8-bit cores to full-int8 .tflite"
  [5]="evaluate float, Keras fake-quant and .tflite (test set and input-SNR buckets)"
  [6]="table"
)

fqse() { "$PYTHON" -m reproductions.fqse "$@" --config "$config" ${set_arguments[@]+"${set_arguments[@]}"}; }

stage_0() {
  if [[ "$(basename "$config" .yaml)" == "paper" ]]; then
    log "paper config: LibriMix must already be generated (asteroid egs/librimix); nothing to build"
  else
    "$PYTHON" -m data_prep.build_mini
  fi
}
stage_1() { fqse train --variant float; }
stage_2() { fqse train --variant vanilla; }
stage_3() { fqse train --variant fqse; }
stage_4() { fqse export; }
stage_5() { fqse evaluate; }
stage_6() { fqse table; }

source "$(dirname "${BASH_SOURCE[0]}")/../../common/stages.sh"
run_stages "$@"
