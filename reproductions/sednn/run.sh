#!/usr/bin/env bash
# sednn (Xu, Du, Dai, Lee, TASLP 2015; Kong's Keras mixture2clean_dnn): DNN regression on log-magnitude spectra,
# sednn's per-noise PESQ table, then pruning / clustering / int8 .tflite of the same DNN.
# Usage: bash reproductions/sednn/run.sh [--config mini|paper|PATH] [--snr DB] [--stage N] [--stop-stage N]
#                                        [--set KEY=VALUE] [--force] [--help]
# Stages mirror sednn's runme.sh: mixtures/features/packing/scaler -> train -> inference + PESQ -> get_stats.
# Spec: docs/sednn.md. Stage timings go to exp/sednn/<config>/stages/times.tsv.
set -euo pipefail

recipe=sednn
stage_titles=(
  [0]="data (embedded mini corpus; the paper config reads TIMIT and sednn's noise folders)"
  [1]="mixtures, log-magnitude features, packing (7 frames, hop 3) and scaler (runme.sh steps 1-4)"
  [2]="train the DNN: MAE, Adam with the config's batch and rate (sednn: 500, 1e-4), resumable (runme.sh steps 5-6)"
  [3]="inference frame by frame and PESQ of the float model, spectrogram figures (runme.sh step 7-8)"
  [4]="magnitude pruning and weight clustering of the Dense layers (beyond sednn)"
  [5]="export float32 and int8 .tflite"
  [6]="evaluate pruned, clustered and the int8 .tflite"
  [7]="table: sednn's per-noise PESQ beside the paper's, all PESQ variants, size vs PESQ"
)

sednn() { "$PYTHON" -m reproductions.sednn "$@" --config "$config" ${set_arguments[@]+"${set_arguments[@]}"}; }

stage_0() {
  if [[ "$(basename "$config" .yaml)" == paper* ]]; then
    log "paper config: TIMIT and the noise folders must be where conf/paper.yaml says (data.timit_dir, ...)"
  else
    "$PYTHON" -m data_prep.build_mini
  fi
}
stage_1() { sednn train --features-only; }
stage_2() { sednn train; }
stage_3() { sednn evaluate --visualize; }
stage_4() { sednn train --variant pruned; sednn train --variant clustered; }
stage_5() { sednn export; }
stage_6() {
  sednn evaluate --variant pruned
  sednn evaluate --variant clustered
  sednn evaluate --tflite --tflite-mode int8
}
stage_7() { sednn table; }

# One model per SNR as sednn: --snr DB runs a copy of the configuration named <config>_<DB>db, so its
# experiment folder, stage markers and results never mix with the 0 dB ones.
arguments=()
snr=""
help_requested=0
config_argument=mini
while [[ $# -gt 0 ]]; do
  case "$1" in
    --snr) snr="$2"; shift 2 ;;
    --config) config_argument="$2"; arguments+=("$1" "$2"); shift 2 ;;
    -h|--help) help_requested=1; arguments+=("$1"); shift ;;
    *) arguments+=("$1"); shift ;;
  esac
done
source "$(dirname "${BASH_SOURCE[0]}")/../../common/stages.sh"
if [[ -n "$snr" && $help_requested -eq 0 ]]; then
  derived="exp/sednn/configs/$(basename "$config_argument" .yaml)_${snr}db.yaml"
  "$PYTHON" -m reproductions.sednn.snr_config "$config_argument" "$snr" "$derived"
  filtered=()
  skip=0
  for argument in ${arguments[@]+"${arguments[@]}"}; do
    if [[ $skip -eq 1 ]]; then skip=0; continue; fi
    if [[ "$argument" == "--config" ]]; then skip=1; continue; fi
    filtered+=("$argument")
  done
  arguments=(--config "$derived" ${filtered[@]+"${filtered[@]}"})
fi
run_stages ${arguments[@]+"${arguments[@]}"}
if [[ $help_requested -eq 1 ]]; then
  echo "  --snr DB         train and test at DB (one model per SNR as sednn; default 0): runs <config>_<DB>db"
fi
