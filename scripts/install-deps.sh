#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages Painpoint needs to build, test and demo.
# Idempotent: asks dpkg what is missing first, so a machine that is already set up
# never triggers `apt-get update` (slow, and needs network).
#
#   scripts/install-deps.sh          install what is missing (as root, or via sudo)
#   scripts/install-deps.sh --check  list what is missing; exit 1 if anything is, install nothing
#   --bench (with either): also the benchmarks' own tools (wrk for bench/api_load.sh)
set -euo pipefail

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; }

check_only=0
bench=0
for arg in "$@"; do
  case $arg in
    --check) check_only=1 ;;
    --bench) bench=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-deps: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

# libboost-dev, not libboost1.81-dev: python3-sklearn -> python3-scipy -> python3-pythran
# pulls in libboost-dev (1.74), and on bookworm the 1.81 headers conflict with it. We only
# need Boost.Asio/Beast, which 1.74 has (JSON goes through protobuf's JSON mapping).
packages=(
  build-essential cmake ninja-build pkg-config git
  librdkafka-dev librocksdb-dev libprotobuf-dev protobuf-compiler
  libssl-dev  # HMAC (libcrypto) for the connectors' webhook signatures
  libboost-dev libcli11-dev libspdlog-dev libstemmer-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev zlib1g-dev libzstd-dev liblz4-dev  # scripts/build-librdkafka.sh (librdkafka 2.12)
  kcat curl
  chromium  # the board's browser tests (tests/board), driven by playwright-core
  openjdk-17-jre-headless maven openssl  # scripts/kafka.sh: Apache Kafka for the kafka test label
  python3 python3-sklearn python3-numpy python3-pip python3-confluent-kafka python3-protobuf
  clang clang-format libclang-rt-14-dev
)
if (( bench )); then
  packages+=(wrk)
fi
# Many machines get node/npm from NodeSource or nvm; Debian's npm would conflict with
# (or shadow) that, so it is only a fallback.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

if [[ -r /etc/os-release ]]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  if [[ "${ID:-}" != debian || "${VERSION_ID:-}" != 12 ]]; then
    echo "install-deps: warning: written for Debian 12, this is ${PRETTY_NAME:-unknown}; package names may differ" >&2
  fi
fi

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

conflict=0
if installed libboost1.81-dev; then
  conflict=1
fi

if (( check_only )); then
  status=0
  if (( ${#missing[@]} )); then
    echo "missing (${#missing[@]}): ${missing[*]}"
    status=1
  fi
  if (( conflict )); then
    echo "conflict: libboost1.81-dev is installed; it conflicts with libboost-dev (1.74) and must be removed"
    status=1
  fi
  (( status )) || echo "all ${#packages[@]} packages installed"
  exit "$status"
fi

if (( ${#missing[@]} == 0 && conflict == 0 )); then
  echo "install-deps: nothing to do (all ${#packages[@]} packages installed)"
  exit 0
fi

if (( EUID == 0 )); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

if (( conflict )); then
  # apt would refuse the whole install otherwise; say loudly what we remove and why.
  echo "install-deps: REMOVING libboost1.81-dev: it conflicts with libboost-dev (Boost 1.74), which"
  echo "              python3-sklearn needs via python3-scipy/python3-pythran. Painpoint builds with 1.74."
  "${as_root[@]}" apt-get remove -y libboost1.81-dev
  # Removing it may have been the only reason libboost-dev was absent.
  installed libboost-dev || [[ " ${missing[*]} " == *" libboost-dev "* ]] || missing+=(libboost-dev)
fi

if (( ${#missing[@]} )); then
  echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

still=()
for p in "${missing[@]}"; do
  installed "$p" || still+=("$p")
done
if (( ${#still[@]} )); then
  echo "install-deps: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "install-deps: done"
