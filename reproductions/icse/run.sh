#!/usr/bin/env bash
# ICSE (Wu, Yu, Fu, Liu, Chien, Tsao, arXiv 1906.01078): Fu et al.'s waveform FCN compressed by parameter pruning
# (PP) and k-means parameter quantization (PQ), then int8 TFLite; the table prints the paper's figures beside ours.
# Usage: bash reproductions/icse/run.sh [--config mini|paper|PATH] [--stage N] [--stop-stage N] [--set KEY=VALUE]
#                                       [--force] [--help]
# Environment: INIT_FROM_KERAS1=PATH starts stage 1 from a Keras-1 weight file (e.g. the authors' FCNN_0509.hdf5;
# add --set training.epochs=0 to use it as is); ICSE_RELEASED_DIR=DIR, the folder of the authors' released files
# (FCNN_0509.hdf5 and Kmeans_16C_ReTrain_st7_sp0.65_FCNN_0425.hdf5, not redistributed), enables stage 8.
# Spec: docs/icse.md. Stage timings go to exp/icse/<config>/stages/times.tsv.
set -euo pipefail

recipe=icse
stage_titles=(
  [0]="data (embedded mini corpus; the paper config reads TIMIT + noise folders) and model summary"
  [1]="train the float FCN: Adam, loss and batching from training.* (paper: whole utterance per batch, MSE) (resumable)"
  [2]="evaluate the FCN and the noisy input (PESQ WB/NB, STOI, SI-SNR)"
  [3]="PP: ICSE channel pruning at each theta, soft-pruning retraining with the mask held"
  [4]="PQ: ICSE k-means (16+16, output 4+4) with shared-centroid retraining; k sweep; FP16 centroids"
  [5]="PP+PQ: k-means of each pruned model, retrained"
  [6]="export int8 .tflite of the FCN and the PP+PQ model"
  [7]="evaluate every compressed model and the .tflite files"
  [8]="released models: the authors' FCNN_0509 through our PP+PQ, beside the authors' PP+PQ file"
  [9]="table: our figures beside the paper's"
)

# oneDNN makes the CPU convolutions' backward pass about 1.7x faster; common.tfkeras turns it off by default for
# bit-reproducible tests, which this training-heavy recipe does not need.
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-1}"

icse() { "$PYTHON" -m reproductions.icse "$@" --config "$config" ${set_arguments[@]+"${set_arguments[@]}"}; }

stage_0() {
  if [[ "$(basename "$config" .yaml)" == paper* ]]; then
    log "paper config: TIMIT and the noise folders must be where conf/paper.yaml says (data.timit_root, ...)"
  else
    "$PYTHON" -m data_prep.build_mini
  fi
  icse info
}
stage_1() {
  if [[ -n "${INIT_FROM_KERAS1:-}" ]]; then
    icse train --variant fcn --init-from-keras1 "$INIT_FROM_KERAS1"
  else
    icse train --variant fcn
  fi
}
stage_2() { icse evaluate --variant fcn; }
stage_3() { icse train --variant pp; }
stage_4() { icse train --variant pq; }
stage_5() { icse train --variant pp_pq; }
stage_6() { icse export; }
stage_7() { icse evaluate; }
stage_8() {
  local released=(FCNN_0509.hdf5 Kmeans_16C_ReTrain_st7_sp0.65_FCNN_0425.hdf5) missing=() name
  if [[ -z "${ICSE_RELEASED_DIR:-}" ]]; then
    log "ICSE_RELEASED_DIR is not set (the folder of the authors' ${released[*]}): released-model comparison skipped"
    stage_skipped=1
    return 0
  fi
  for name in "${released[@]}"; do [[ -f "$ICSE_RELEASED_DIR/$name" ]] || missing+=("$ICSE_RELEASED_DIR/$name"); done
  if (( ${#missing[@]} )); then
    log "missing ${missing[*]}: released-model comparison skipped"
    stage_skipped=1
    return 0
  fi
  icse info --init-from-keras1 "$ICSE_RELEASED_DIR/${released[1]}"
  icse train --variant released --released-dir "$ICSE_RELEASED_DIR"
  icse evaluate
}
stage_9() { icse table; }

source "$(dirname "${BASH_SOURCE[0]}")/../../common/stages.sh"
run_stages "$@"
