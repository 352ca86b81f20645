#!/usr/bin/env bash
# One command for the whole suite: set-up, the embedded mini corpus, every reproduction, the result tables.
#
#   ./runme.sh                 set up, build the corpus, run every reproduction (mini configs), print tables
#   ./runme.sh test [ARGS]     set up, then run the test suite (ARGS go to pytest); .ci/run calls this
#   ./runme.sh setup           only the set-up (system packages, .venv, Python requirements)
#   ./runme.sh --help          all flags
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

ALL_REPRODUCTIONS=(icse fqse sednn crn tfgridnet)
PYTHON=.venv/bin/python
source common/allocator.sh

usage() {
  cat <<'EOF'
Usage: ./runme.sh [COMMAND] [OPTIONS]

Commands:
  (none)      set up, build the embedded mini corpus, run every reproductions/*/run.sh, print all tables
  test        set up, then run the test suite (extra arguments are passed to pytest)
  setup       create .venv, install requirements.txt, the project (editable), the corpus' Debian packages and TCMalloc

Options for the main run:
  --only NAME     run only this reproduction (repeatable): icse fqse sednn crn tfgridnet
  --skip NAME     skip this reproduction (repeatable)
  --config NAME   configuration for every reproduction: mini (default) or paper
  --force         redo stages that finished before (default: a rerun continues where it stopped)
  --no-setup      skip the set-up step
  -h, --help      this message

Trained models go to exp/<name>/<config>/, results to results/<name>/<config>/.
EOF
}

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') [runme] $*"; }

setup() {
  local started=$SECONDS
  if [[ ! -x $PYTHON ]]; then
    log "creating .venv"
    python3 -m venv .venv || {
      echo "error: 'python3 -m venv' failed; on Debian install it with: apt-get install -y python3-venv" >&2
      return 1
    }
  fi
  local stamp=.venv/.requirements.sha256 wanted
  wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
    log "installing Python requirements into .venv (first time: several minutes)"
    $PYTHON -m pip install -q --disable-pip-version-check --upgrade pip
    $PYTHON -m pip install -q --disable-pip-version-check -r requirements.txt
    echo "$wanted" > "$stamp"
  fi
  # The project itself, editable, so that common, data_prep, reproductions and benchmarks import from anywhere;
  # redone when pyproject.toml or the checkout's location changes.
  local project_stamp=.venv/.project.sha256 project_wanted
  project_wanted=$( { sha256sum pyproject.toml; pwd; } | sha256sum | cut -d' ' -f1)
  if [[ ! -f $project_stamp || $(cat "$project_stamp") != "$project_wanted" ]]; then
    log "installing the project into .venv (editable)"
    $PYTHON -m pip install -q --disable-pip-version-check --no-deps -e .
    echo "$project_wanted" > "$project_stamp"
  fi
  # The Debian packages the embedded corpus is made from (installed with apt-get as root, otherwise the
  # command to run is printed); the list lives in data_prep/build_mini.py.
  $PYTHON -c "from data_prep.build_mini import ensure_packages; ensure_packages()"
  install_tcmalloc
  log "set-up done in $((SECONDS - started)) s"
}

# The recipes train 1.4-3.6x faster per step on TCMalloc (common/allocator.sh); without root the set-up says so.
install_tcmalloc() {
  [[ -n $(tcmalloc_library) ]] && return 0
  local command=(apt-get install -y -q --no-install-recommends libtcmalloc-minimal4)
  if [[ $(id -u) -ne 0 ]]; then
    log "note: TCMalloc is not installed, training runs on glibc's malloc (slower); to install it run:" \
        "sudo ${command[*]}"
    return 0
  fi
  log "installing libtcmalloc-minimal4 with apt-get"
  DEBIAN_FRONTEND=noninteractive "${command[@]}" >/dev/null || {
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${command[@]}" >/dev/null
  } || log "note: apt-get could not install libtcmalloc-minimal4; training runs on glibc's malloc (slower)"
}

run_tests() {
  setup
  local workers=()
  # Two pytest workers use both cores; each imports TensorFlow once.
  [[ $(nproc) -ge 2 ]] && workers=(-n 2)
  log "running the test suite"
  $PYTHON -m pytest "${workers[@]}" tests "$@"
}

main_run() {
  local only=() skip=() config=mini force=() do_setup=1
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --only) only+=("$2"); shift 2 ;;
      --skip) skip+=("$2"); shift 2 ;;
      --config) config="$2"; shift 2 ;;
      --force) force=(--force); shift ;;
      --no-setup) do_setup=0; shift ;;
      -h|--help) usage; return 0 ;;
      *) echo "error: unknown option '$1' (see --help)" >&2; return 2 ;;
    esac
  done
  local name selected=()
  for name in "${only[@]}" "${skip[@]}"; do
    [[ " ${ALL_REPRODUCTIONS[*]} " == *" $name "* ]] || { echo "error: no reproduction '$name'" >&2; return 2; }
  done
  for name in "${ALL_REPRODUCTIONS[@]}"; do
    [[ ${#only[@]} -gt 0 && " ${only[*]} " != *" $name "* ]] && continue
    [[ " ${skip[*]:-} " == *" $name "* ]] && continue
    selected+=("$name")
  done

  local started=$SECONDS step_started
  [[ $do_setup -eq 1 ]] && setup
  log "building the embedded mini corpus (skipped when already built)"
  step_started=$SECONDS
  $PYTHON -m data_prep.build_mini
  log "corpus ready in $((SECONDS - step_started)) s"

  local status=() seconds=() failed=0
  for name in "${selected[@]}"; do
    if [[ ! -f reproductions/$name/run.sh ]]; then
      status+=("not built yet"); seconds+=(0); continue
    fi
    log "=== ${name}: bash reproductions/${name}/run.sh --config ${config} ${force[*]:-}"
    step_started=$SECONDS
    if bash "reproductions/$name/run.sh" --config "$config" "${force[@]}"; then
      status+=("ok")
    else
      status+=("FAILED (see the log above)"); failed=1
    fi
    seconds+=($((SECONDS - step_started)))
  done
  if [[ -f benchmarks/run.sh && ${#only[@]} -eq 0 ]]; then
    log "=== benchmark across the models"
    bash benchmarks/run.sh --config "$config" "${force[@]}" || failed=1
  fi

  echo
  echo "=================================== result tables ==================================="
  local result_dirs=()
  for name in "${selected[@]}"; do
    [[ -d results/$name/$config ]] && result_dirs+=("results/$name/$config")
  done
  [[ ${#result_dirs[@]} -gt 0 ]] && $PYTHON -m common.tables "${result_dirs[@]}"
  echo
  echo "=================================== summary ========================================="
  local index
  for index in "${!selected[@]}"; do
    printf '  %-10s %-28s %6s s\n' "${selected[$index]}" "${status[$index]}" "${seconds[$index]}"
  done
  printf '  %-10s %-28s %6s s\n' "total" "" "$((SECONDS - started))"
  return $failed
}

case "${1:-}" in
  test) shift; run_tests "$@" ;;
  setup) shift; setup ;;
  *) main_run "$@" ;;
esac
