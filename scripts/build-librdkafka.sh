#!/usr/bin/env bash
# Builds the librdkafka Painpoint links (docs/adr-004-real-kafka.md): the source inside the
# npm package node-rdkafka@3.6.1 (deps/librdkafka), fetched with `npm pack` and checked against a
# pinned sha256, configured with SSL (Debian's OpenSSL), the built-in SASL PLAIN/SCRAM/OAUTHBEARER,
# zlib, zstd and lz4 from Debian, and without libcurl (OIDC) or Cyrus SASL (GSSAPI). Installs the
# static library and headers into $PAINPOINT_DATA_HOME/librdkafka-2.12.0 (else
# $XDG_CACHE_HOME/painpoint/, else ~/.cache/painpoint/), where CMakeLists.txt looks first.
#
# Usage: scripts/build-librdkafka.sh [PREFIX]
# Idempotent: does nothing when PREFIX holds a build whose stamp matches this script's recipe.
# Needs npm, a C compiler, make, pkg-config and libssl-dev, zlib1g-dev, libzstd-dev, liblz4-dev
# (scripts/install-deps.sh). No network once the tarball is cached next to PREFIX.
set -euo pipefail

PKG="node-rdkafka"
PKG_VER="3.6.1"
TARBALL="node-rdkafka-3.6.1.tgz"
TARBALL_SHA256="148f7e7b65c510314c70762d8f1be052c8fe1fdf03a128e6c78083a729a57a30"
RDKAFKA_VER="2.12.0"
CONFIGURE_FLAGS=(--disable-curl --disable-gssapi --enable-ssl --enable-zstd --enable-zlib
                 --enable-lz4-ext --disable-syslog)
DATA_HOME="${PAINPOINT_DATA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/painpoint}"
PREFIX="${1:-$DATA_HOME/librdkafka-$RDKAFKA_VER}"
STAMP="$PREFIX/.painpoint-build"
JOBS="${PAINPOINT_BUILD_JOBS:-2}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
expected_stamp() { printf '%s %s %s\n' "$TARBALL_SHA256" "$RDKAFKA_VER" "${CONFIGURE_FLAGS[*]}"; }

if [[ -f "$STAMP" && -f "$PREFIX/lib/librdkafka.a" && "$(cat "$STAMP")" == "$(expected_stamp)" ]]
then
  echo "build-librdkafka: $PREFIX already holds librdkafka $RDKAFKA_VER" >&2
  exit 0
fi

# Only an earlier build of this script is replaced, never a directory someone else filled.
if [[ -d "$PREFIX" && -n "$(ls -A "$PREFIX")" && ! -f "$STAMP" && ! -f "$PREFIX/lib/librdkafka.a" ]]
then
  echo "build-librdkafka: $PREFIX is not empty and holds no earlier build; not touching it" >&2
  exit 1
fi

CACHE="$DATA_HOME/npm-packages"
mkdir -p "$CACHE"
if [[ ! -s "$CACHE/$TARBALL" || "$(sha256_of "$CACHE/$TARBALL")" != "$TARBALL_SHA256" ]]; then
  rm -f "$CACHE/$TARBALL"
  (cd "$CACHE" && npm pack --silent --cache "$DATA_HOME/npm-cache" "$PKG@$PKG_VER" >/dev/null)
fi
if [[ "$(sha256_of "$CACHE/$TARBALL")" != "$TARBALL_SHA256" ]]; then
  echo "build-librdkafka: $CACHE/$TARBALL: checksum $(sha256_of "$CACHE/$TARBALL")," \
       "expected $TARBALL_SHA256" >&2
  exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/painpoint-librdkafka.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$CACHE/$TARBALL" -C "$WORK" package/deps/librdkafka
SRC="$WORK/package/deps/librdkafka"
header_ver="$(sed -n 's/^#define RD_KAFKA_VERSION 0x\([0-9a-f]*\).*/\1/p' "$SRC/src/rdkafka.h")"
echo "build-librdkafka: building librdkafka (RD_KAFKA_VERSION 0x$header_ver) into $PREFIX" >&2

rm -rf "$PREFIX"
(
  cd "$SRC"
  ./configure --prefix="$PREFIX" "${CONFIGURE_FLAGS[@]}" >"$WORK/configure.log" 2>&1 ||
    { tail -40 "$WORK/configure.log" >&2; exit 1; }
  # Only the C library (src/); Painpoint does not use the C++ wrapper.
  make -C src -j "$JOBS" >"$WORK/make.log" 2>&1 || { tail -40 "$WORK/make.log" >&2; exit 1; }
  make -C src install >>"$WORK/make.log" 2>&1 || { tail -40 "$WORK/make.log" >&2; exit 1; }
)
# Static linking only: without the shared objects nothing can pick them up by accident.
rm -f "$PREFIX"/lib/librdkafka.so* "$PREFIX"/lib/librdkafka-static.a

# The version the library reports, not the one the package name promises.
cat >"$WORK/version.c" <<'EOF'
#include <librdkafka/rdkafka.h>
#include <stdio.h>
int main(void) { puts(rd_kafka_version_str()); return 0; }
EOF
# shellcheck disable=SC2046  # pkg-config's output is a list of flags
cc -o "$WORK/version" "$WORK/version.c" -I"$PREFIX/include" "$PREFIX/lib/librdkafka.a" \
  $(pkg-config --libs libssl libcrypto libzstd liblz4 zlib) -lm -ldl -lpthread -lrt
reported="$("$WORK/version")"
if [[ "$reported" != "$RDKAFKA_VER" ]]; then
  echo "build-librdkafka: the library reports version $reported, expected $RDKAFKA_VER" >&2
  exit 1
fi
expected_stamp >"$STAMP"
echo "build-librdkafka: librdkafka $reported installed in $PREFIX" >&2
