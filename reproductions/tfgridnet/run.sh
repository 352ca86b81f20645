#!/usr/bin/env bash
# TF-GridNet with direct (DL) and SNR-progressive (PL) learning: train both, score DNSMOS / PESQ / STOI / SI-SNR,
# train our complex-input ablation, export .tflite, print upstream's Tables 1 and 2 beside ours.
# Usage: bash reproductions/tfgridnet/run.sh [--config mini|paper|PATH] [--stage N] [--stop-stage N] [--force] [--help]
# Spec: docs/tfgridnet.md. Stage timings go to exp/tfgridnet/<config>/stages/times.tsv.
set -euo pipefail

recipe=tfgridnet
stage_titles=(
  [0]="data (embedded mini corpus; the paper config reads DNS5 from data.clean_dir / data.noise_dir)"
  [1]="model info: parameter counts and MACs per second"
  [2]="train direct learning (DL)"
  [3]="train progressive learning (PL)"
  [4]="train our ablation: DL with the complex spectrum as input (same budget)"
  [5]="evaluate noisy, DL, PL and the ablation (PESQ WB, STOI, SI-SNR, DNSMOS)"
  [6]="export .tflite of DL and PL (float32, dynamic range, int16x8 / int8 spectral core) and score what converts"
  [7]="tables, PL - DL paired differences, learning curves"
)

tfgridnet() { "$PYTHON" -m reproductions.tfgridnet "$@" --config "$config" ${set_arguments[@]+"${set_arguments[@]}"}; }

stage_0() {
  if [[ "$(basename "$config" .yaml)" == "paper" ]]; then
    log "paper config: DNS5 16 kHz clean and noise folders must exist (data.clean_dir, data.noise_dir); nothing to build"
  else
    "$PYTHON" -m data_prep.build_mini
  fi
}
stage_1() { tfgridnet info; }
stage_2() { tfgridnet train --strategy direct; }
stage_3() { tfgridnet train --strategy progressive; }
stage_4() { tfgridnet train --strategy complex; }
stage_5() { tfgridnet evaluate --strategy all; }
stage_6() { tfgridnet export --strategy both; }
stage_7() { tfgridnet table; }

source "$(dirname "${BASH_SOURCE[0]}")/../../common/stages.sh"
run_stages "$@"
