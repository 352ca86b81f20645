# TCMalloc for every Python process a reproduction's run.sh starts (sourced by common/stages.sh; runme.sh uses
# tcmalloc_library to install it). The deployment benchmark and the test suite keep glibc's malloc: TCMalloc keeps
# freed pages resident, which hides peaks from the resident-memory measurements.
#
# With glibc's malloc, TensorFlow's Eigen CPU kernels give their large per-step buffers back to the kernel and
# fault them in again on the next step: the recipes' training steps took 1.4-3.6x as long as under TCMalloc on the
# 2-core machine (docs/toolchain.md#memory-allocator). `./runme.sh setup` installs Debian's libtcmalloc-minimal4;
# SE_ALLOCATOR=system keeps glibc's malloc.

tcmalloc_library() {
  local ldconfig
  ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
  [[ -x $ldconfig ]] || return 0
  # awk reads to the end: an early exit would fail the pipeline (SIGPIPE) under pipefail.
  "$ldconfig" -p 2>/dev/null | awk '/libtcmalloc_minimal\.so\.4 / && !found { print $NF; found = 1 }' || true
}

use_tcmalloc() {
  [[ ${SE_ALLOCATOR:-tcmalloc} == system || ${LD_PRELOAD:-} == *tcmalloc* ]] && return 0
  local library
  library=$(tcmalloc_library)
  [[ -n $library && -f $library ]] || return 0
  export LD_PRELOAD="${library}${LD_PRELOAD:+:$LD_PRELOAD}"
  # Paper-size tensors and long files would each print a "tcmalloc: large alloc" line.
  export TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=${TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD:-1099511627776}
}
