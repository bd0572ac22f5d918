#!/usr/bin/env bash
# The long forms of the fault suites. Without --instances: the crash suite
# (tests/fault/crash_test.py) on the embedded broker: N events plus ~5% redelivered copies through
# one `painpoint serve`, SIGKILLed K times at random moments and restarted, then the end state is
# checked (store = the distinct events, each in exactly one pain point, counts add up, latest
# summary per key = the store).
#
#   scripts/soak.sh [--events N] [--kills K] [--partitions P] [--seed S]
#
# Defaults: 1,000,000 events, 50 kills, 128 partitions per topic (the embedded broker keeps at
# most 5 MiB per partition; the input must fit). Last line "crash_test: seed S, N events
# (M messages), K kills, lost 0, double-counted 0, T s".
#
# With --instances I (I >= 2, e.g. 3): issue 17's kill test (tests/kafka/kill_test.py) on Apache
# Kafka (PAINPOINT_TEST_KAFKA, default 4.4.0; scripts/kafka.sh fetches the jars): I instances
# with the changelog, static membership and forwarding, one of them SIGKILLed K times and
# restarted, one more added and one removed while the input is produced (over --window S
# seconds, default events / 5000), then the end state read from each partition's holder.
#
#   scripts/soak.sh --instances 3 [--events N] [--kills K] [--partitions P] [--window S] [--seed S]
#
# Defaults there: 2,000,000 events, 50 kills, 12 partitions per topic. Last line "kill_test: seed
# S, N events (M messages), K kills, I instances at the end, lost 0, double-counted 0, T s".
#
# Binary: build/service/painpoint or $PAINPOINT_BIN. Both print the seed first
# (PAINPOINT_FAULT_SEED=S or --seed S replays the schedule; the timing varies with the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PAINPOINT_BIN:-build/service/painpoint}
if [[ ! -x "$bin" ]]; then
  echo "no $bin: build first (cmake --preset default && cmake --build --preset default)" >&2
  exit 2
fi
instances=
rest=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --instances) instances=${2:?--instances needs a number}; shift 2 ;;
    --instances=*) instances=${1#--instances=}; shift ;;
    *) rest+=("$1"); shift ;;
  esac
done
if [[ -z $instances ]]; then
  exec /usr/bin/python3 tests/fault/crash_test.py "$bin" --events 1000000 --kills 50 \
    --partitions 128 "${rest[@]}"
fi
export PAINPOINT_TEST_KAFKA=${PAINPOINT_TEST_KAFKA:-4.4.0}
scripts/kafka.sh fetch --version "$PAINPOINT_TEST_KAFKA" >/dev/null
exec /usr/bin/python3 tests/kafka/kill_test.py "$bin" --events 2000000 --kills 50 \
  --instances "$instances" "${rest[@]}"
