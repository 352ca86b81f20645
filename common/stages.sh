# Numbered-stage driver shared by every reproductions/<name>/run.sh (ESPnet/asteroid recipe style).
#
# A run.sh sets its name and stage titles, defines one shell function per stage and sources this file:
#
#   recipe=icse
#   stage_titles=([0]="data" [1]="train float FCN" [2]="evaluate")
#   stage_0() { "$PYTHON" -m data_prep.build_mini; }
#   stage_1() { "$PYTHON" -m reproductions.icse train --config "$config"; }
#   ...
#   source "$(dirname "${BASH_SOURCE[0]}")/../../common/stages.sh"
#   run_stages "$@"
#
# Options understood by every run.sh: --config paper|mini|PATH, --stage N, --stop-stage N, --force, --help.
# A stage that finished is recorded in exp/<recipe>/<run>/stages/ and skipped on the next run (so a rerun
# continues where the last one stopped); --force redoes the selected stages. A stage that cannot run yet (an
# optional input absent) says why and sets stage_skipped=1: it is not recorded, so the next run tries it again. Each stage's time is printed
# and appended to exp/<recipe>/<run>/stages/times.tsv. <run> is the config name, with a tag of the --set
# overrides when there are any, as for the python commands.

set -euo pipefail

repository_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repository_root"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$repository_root/.venv/bin/python" ]]; then PYTHON="$repository_root/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1
source "$repository_root/common/allocator.sh"
use_tcmalloc

log() {
  echo "$(date '+%Y-%m-%d %H:%M:%S') [${recipe}] $*"
}

stage_usage() {
  cat <<EOF
Usage: bash $0 [--config paper|mini|PATH] [--stage N] [--stop-stage N] [--force]

Runs the ${recipe} reproduction in numbered stages:
EOF
  local number
  for number in "${!stage_titles[@]}"; do
    printf '  stage %s  %s\n' "$number" "${stage_titles[$number]}"
  done
  cat <<EOF

Options:
  --config NAME    'mini' (default: trains in minutes on 2 CPU cores), 'paper', or a YAML file
  --stage N        first stage to run (default: the first)
  --stop-stage N   last stage to run (default: the last)
  --force          redo stages even if they finished before (training still resumes from its
                   checkpoints: delete exp/${recipe}/<config> to train from scratch)
  --set KEY=VALUE  configuration override passed to every python command (repeatable)
  -h, --help       this message
EOF
}

run_stages() {
  config=mini
  local stage=0 stop_stage=1000 force=0
  set_arguments=()
  local set_values=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --config) config="$2"; shift 2 ;;
      --stage) stage="$2"; shift 2 ;;
      --stop-stage) stop_stage="$2"; shift 2 ;;
      --set) set_arguments+=(--set "$2"); set_values+=("$2"); shift 2 ;;
      --force) force=1; shift ;;
      -h|--help) stage_usage; return 0 ;;
      *) echo "error: unknown option '$1' (see --help)" >&2; return 2 ;;
    esac
  done
  # The same folder names as the python commands get (common.config.experiment_name): overrides get their own.
  local experiment_name
  experiment_name="$("$PYTHON" -m common.config experiment-name "$config" ${set_values[@]+"${set_values[@]}"})"
  exp_dir="exp/${recipe}/${experiment_name}"
  results_dir="results/${recipe}/${experiment_name}"
  local marker_dir="${exp_dir}/stages"
  mkdir -p "$marker_dir"
  local number started elapsed total=0
  for number in "${!stage_titles[@]}"; do
    (( number < stage || number > stop_stage )) && continue
    if [[ -f "${marker_dir}/${number}.done" && $force -eq 0 ]]; then
      log "Stage ${number}: ${stage_titles[$number]} (done before, skipped; --force redoes it)"
      continue
    fi
    log "Stage ${number}: ${stage_titles[$number]}"
    started=$SECONDS
    stage_skipped=0
    "stage_${number}"
    elapsed=$((SECONDS - started))
    total=$((total + elapsed))
    if (( stage_skipped )); then
      log "Stage ${number} skipped: not marked done, so the next run tries it again"
      continue
    fi
    date '+%Y-%m-%dT%H:%M:%S' > "${marker_dir}/${number}.done"
    printf '%s\t%s\t%s\t%s\n' "$(date '+%Y-%m-%dT%H:%M:%S')" "$number" "${stage_titles[$number]}" "$elapsed" \
      >> "${marker_dir}/times.tsv"
    log "Stage ${number} finished in ${elapsed} s"
  done
  log "All selected stages finished (${total} s this run)"
}
