#!/usr/bin/env bash
# The long form of the crash suite (tests/fault/crash_test.py): N events plus ~5% redelivered
# copies through `painpoint serve`, SIGKILLed K times at random moments and restarted, then the
# end state is checked (store = the distinct events, each in exactly one pain point, counts add
# up, latest summary per key = the store).
#
#   scripts/soak.sh [--events N] [--kills K] [--partitions P] [--seed S]
#
# Defaults: 1,000,000 events, 50 kills, 128 partitions per topic (the embedded broker keeps at
# most 5 MiB per partition; the input must fit). Binary: build/service/painpoint or
# $PAINPOINT_BIN. Prints the seed (PAINPOINT_FAULT_SEED=S or --seed S replays the schedule) and a
# last line "crash_test: seed S, N events (M messages), K kills, lost 0, double-counted 0, T s".
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PAINPOINT_BIN:-build/service/painpoint}
if [[ ! -x "$bin" ]]; then
  echo "no $bin: build first (cmake --preset default && cmake --build --preset default)" >&2
  exit 2
fi
args=(--events 1000000 --kills 50 --partitions 128)
exec /usr/bin/python3 tests/fault/crash_test.py "$bin" "${args[@]}" "$@"
