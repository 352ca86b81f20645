#!/usr/bin/env bash
# CRN (Tan & Wang, Interspeech 2018; the first author's JupiterEthan/CRN-causal is the authority): causal CRN and
# the LSTM-2 baseline on |STFT| (20 ms Hamming, 10 ms hop, 161 bins), then streaming .tflite (float32, int8 weights,
# full int8) with explicit state I/O and fused LSTMs, evaluated as .tflite, with per-hop latency on one thread.
# Usage: bash reproductions/crn/run.sh [--config mini|paper|PATH] [--stage N] [--stop-stage N] [--set KEY=VALUE]
#                                      [--force] [--help]
# Spec: docs/crn.md. Stage timings go to exp/crn/<config>/stages/times.tsv.
set -euo pipefail

recipe=crn
stage_titles=(
  [0]="data (embedded mini corpus; the paper config reads WSJ0 SI-84 and the noise folders of conf/paper.yaml)"
  [1]="model sizes: parameter counts and MACs per second of audio"
  [2]="train the CRN: masked MSE, Adam, batches of 16 whole utterances, lr x0.98 every 2 epochs (resumable)"
  [3]="train the LSTM-2 baseline the same way"
  [4]="evaluate unprocessed, LSTM-2 and CRN (offline Keras) per noise and SNR, and on the robustness sets"
  [5]="export streaming .tflite (float32, dynamic-range int8, full int8): state I/O, dense or fused LSTM steps (export.lstm_form), equality checks, latency"
  [6]="evaluate the streaming .tflite files hop by hop (full int8 on the robustness sets too)"
  [7]="table: ours beside the paper's figures, size and latency"
)

crn() { "$PYTHON" -m reproductions.crn "$@" --config "$config" ${set_arguments[@]+"${set_arguments[@]}"}; }

stage_0() {
  if [[ "$(basename "$config" .yaml)" == paper* ]]; then
    log "paper config: WSJ0 SI-84 (.wav) and the noise folders must be where conf/paper.yaml says (data.wsj0_root, ...)"
  else
    "$PYTHON" -m data_prep.build_mini
  fi
}
stage_1() { crn info; }
stage_2() { crn train --model crn; }
stage_3() { crn train --model lstm2; }
stage_4() { crn evaluate; }
stage_5() {
  crn export
  "$PYTHON" -m reproductions.crn.streaming benchmark "$exp_dir"/tflite/crn_streaming_*.tflite
}
stage_6() { crn evaluate --tflite; }
stage_7() { crn table; }

source "$(dirname "${BASH_SOURCE[0]}")/../../common/stages.sh"
run_stages "$@"
