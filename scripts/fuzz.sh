#!/usr/bin/env bash
# Builds the libFuzzer targets (cmake --preset fuzz: clang, ASan+UBSan) and runs each one for a
# while on a scratch copy of its seed corpus (tests/fuzz/corpus/<target>), so the repository's
# corpus only changes when someone commits new seeds on purpose.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 60 s, every target)
#   scripts/fuzz.sh --build                                builds every target, runs none
#
# Exits non-zero if any target crashes, leaks, times out or breaks an invariant; the input that
# did it is kept under build-fuzz/fuzz-artifacts/<target>/ and its path is printed. Reproduce with
#   build-fuzz/tests/fuzz/<target> <artifact>
# Environment: PAINPOINT_FUZZ_JOBS (build parallelism, default 2), PAINPOINT_FUZZ_KEEP=1 keeps the
# scratch corpora (new interesting inputs) and logs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

all_targets=(fuzz_wire_event fuzz_json_event fuzz_http_request
             fuzz_connector_zendesk fuzz_connector_intercom fuzz_connector_jira fuzz_connector_generic)
build_only=0
if [[ ${1:-} == --build && $# == 1 ]]; then
  build_only=1
  shift
fi
seconds=${1:-60}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]   (targets: ${all_targets[*]})" >&2
  exit 2
fi
shift $(($# > 0 ? 1 : 0))
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  if [[ ! -d "tests/fuzz/corpus/$t" ]]; then
    echo "unknown fuzz target '$t' (targets: ${all_targets[*]})" >&2
    exit 2
  fi
done

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "${PAINPOINT_FUZZ_JOBS:-2}" --target "${targets[@]}"
((build_only == 0)) || exit 0

scratch=$(mktemp -d "${TMPDIR:-/tmp}/painpoint-fuzz.XXXXXX")
if [[ "${PAINPOINT_FUZZ_KEEP:-0}" == 1 ]]; then
  echo "scratch corpora and logs: $scratch"
else
  trap 'rm -rf "$scratch"' EXIT
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
summary=()
for t in "${targets[@]}"; do
  corpus="$scratch/corpus/$t"
  artifacts="$root/build-fuzz/fuzz-artifacts/$t"
  log="$scratch/$t.log"
  mkdir -p "$corpus" "$artifacts"
  cp -r "tests/fuzz/corpus/$t/." "$corpus/"
  printf '\n==> fuzzing %s for %s s\n' "$t" "$seconds"
  start=$(date +%s)
  status=0
  "build-fuzz/tests/fuzz/$t" "$corpus" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 ||
    status=$?
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [[ -n "$execs" ]] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  units=$(find "$corpus" -type f | wc -l)
  line=$(printf '%-18s %10s execs %5s s  corpus %5s  ' "$t" "${execs:-?}" "$elapsed" "$units")
  if [[ $status -eq 0 ]]; then
    summary+=("${line}ok")
    grep -E '^(#[0-9]+ +DONE|Done )' "$log" | tail -1 || true
  else
    summary+=("${line}FAILED (exit $status)")
    failed+=("$t")
    # The report (sanitizer trace or invariant message) and where libFuzzer saved the input.
    grep -v -E '^#[0-9]+ ' "$log" | tail -60
    grep -E 'Test unit written to|artifact' "$log" || echo "(no artifact written; log: $log)"
    trap - EXIT  # keep the log for inspection
    echo "log: $log"
  fi
done

printf '\n==> fuzz summary (%s s per target)\n' "$seconds"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzzing FAILED: ${failed[*]}" >&2
  exit 1
fi
