#!/usr/bin/env bash
# Distils static token vectors from the sentence encoder all-MiniLM-L6-v2 (the Model2Vec method),
# an opt-in alternative to GloVe for cluster.encoder = static: pass the file as --word-vectors to
# serve, cluster and replay rebuild (painpoint::aggregator::load_word_vectors() reads both
# formats) and set cluster.sparse_weight = 0.6 and cluster.static_merge_ratio = 0.8
# (docs/clustering.md, "Static token vectors").
#
# Every WordPiece token of the encoder's vocabulary goes through the model alone, as
# "[CLS] token [SEP]", and the mean of the three outputs (the model's mean pooling) is its vector.
# The vectors are centred on their mean and, below 384 dimensions, projected on their first
# principal components (PCA over the vocabulary's vectors, as Model2Vec reduces them: fewer
# dimensions make each event's sum and every similarity cheaper), then weighted by
# w = a / (a + p) with p the token's Zipf probability from its rank in the vocabulary (which is
# ordered by frequency) and a = 3e-5, so frequent tokens weigh little (Model2Vec's SIF
# weighting), and stored as int8 codes with a scale per token. An event's vector is then the sum
# of its tokens' vectors: no transformer at run time.
#
# Usage: scripts/fetch-token-vectors.sh [--dims N] [OUTPUT_FILE]
#   N: 256 (default), 384 (no PCA: the file before PCA), or any of 1..384.
#   OUTPUT_FILE defaults to $PAINPOINT_DATA_HOME/minilm-tokens-${N}d.bin, else
#   $XDG_CACHE_HOME/painpoint/, else ~/.cache/painpoint/. The encoder comes from
#   scripts/fetch-encoder.sh (run first).
# Idempotent: does nothing when the output exists (it is written to a temporary file and renamed).
# Everything runs in float64 (about a minute of CPU with numpy and scipy; the principal axes'
# signs are fixed by their largest component), so that the rounded int8 codes, and with them the
# file, should not depend on the BLAS library or the CPU; a file whose checksum differs from the
# one measured is kept with a warning (serve records the checksum of the file it clusters with,
# so a data directory never mixes two of them).
#
# Output format (little endian):
#   "PPTV0001"  8-byte magic
#   u32 vocab_size, u32 dims, u32 max_tokens (256), u32 vocab_bytes
#   vocab_bytes: the WordPiece vocabulary, tokens joined by '\n', in id order
#   vocab_size x f32 scale                       vector[i] = scale * int8 codes
#   vocab_size x dims x i8 codes
set -euo pipefail

DIMS=256
if [[ "${1:-}" == --dims ]]; then
  DIMS="${2:?--dims needs a number}"
  shift 2
fi
if ! [[ "$DIMS" =~ ^[0-9]+$ ]] || (( DIMS < 1 || DIMS > 384 )); then
  echo "fetch-token-vectors: --dims must be 1..384, not $DIMS" >&2
  exit 2
fi
DATA_HOME="${PAINPOINT_DATA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/painpoint}"
OUT="${1:-$DATA_HOME/minilm-tokens-${DIMS}d.bin}"
ENCODER="$DATA_HOME/minilm-l6-v2.bin"
# The files the figures in docs/clustering.md were measured with (numpy 1.24, this machine).
case "$DIMS" in
  384) OUT_SHA256="b02a05b20ea0e134e35c9c0eef2da7aafbad629e8bef5128d1a8cde0bbd00c5c" ;;
  256) OUT_SHA256="60ba52a8d9f1bcf528b6805d7b1f9e7d90310142c40c5cab3cc242af680d73e6" ;;
  128) OUT_SHA256="836c3f2118f82a6ff18652a58bd26a9fc68b26dd0c7ee55104ca731c1d471e72" ;;
  100) OUT_SHA256="0f73caa6f86f124f3b61a96a6dfacb1d5fba719b229a394b252bba3d51cb2781" ;;
  64) OUT_SHA256="d2fd46400e42f52872bf153985a689e174cec1d124cfbca181cb693ab64dc179" ;;
  *) OUT_SHA256="" ;;
esac
PY="${PYTHON:-/usr/bin/python3}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -s "$OUT" ]]; then
  echo "fetch-token-vectors: $OUT already exists" >&2
  exit 0
fi
"$(dirname "$0")/fetch-encoder.sh" "$ENCODER"

TMP="$OUT.tmp.$$"
trap 'rm -f "$TMP"' EXIT
"$PY" - "$ENCODER" "$TMP" "$DIMS" <<'PYEOF'
import math, struct, sys
import numpy as np
from scipy.special import erf  # python3-scipy, installed with python3-sklearn

src, dst, dims = sys.argv[1], sys.argv[2], int(sys.argv[3])
SIF_A = 3e-5
raw = open(src, "rb").read()
if raw[:8] != b"PPENC001":
    sys.exit(f"fetch-token-vectors: {src}: not a PPENC001 file")
_, V, H, L, NH, F, P, max_tokens, vocab_bytes = struct.unpack_from("<9I", raw, 8)
off = 8 + 36
vocab = raw[off:off + vocab_bytes].decode("utf-8").split("\n")
off += vocab_bytes
assert len(vocab) == V

def take(*shape):
    """The next tensor of the file (each starts at a multiple of 64 bytes), as float64."""
    global off
    off += -off % 64
    n = math.prod(shape)
    t = np.frombuffer(raw, dtype="<f4", count=n, offset=off).reshape(shape)
    off += 4 * n
    return t.astype(np.float64)

word, pos, token_type = take(V, H), take(P, H), take(H)
emb_ln = (take(H), take(H))
layers = []
for _ in range(L):
    t = {}
    for name in ("q", "k", "v", "attn_out"):
        t[name] = (take(H, H), take(H))
    t["ln1"] = (take(H), take(H))
    t["ffn_in"] = (take(F, H), take(F))
    t["ffn_out"] = (take(H, F), take(H))
    t["ln2"] = (take(H), take(H))
    layers.append(t)

def layer_norm(x, wb):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-12) * wb[0] + wb[1]

def dense(x, wb):
    return x @ wb[0].T + wb[1]

# Every sequence is [CLS] token [SEP]: three positions, no padding, whole batches at once.
cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
hd = H // NH
out = np.zeros((V, H))
for start in range(0, V, 1024):
    ids = np.arange(start, min(V, start + 1024))
    n = len(ids)
    seq = np.stack([np.full(n, cls), ids, np.full(n, sep)], 1)
    x = layer_norm(word[seq] + pos[:3][None] + token_type, emb_ln).reshape(n * 3, H)
    for t in layers:
        q, k, v = (dense(x, t[name]).reshape(n, 3, NH, hd) for name in ("q", "k", "v"))
        a = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        c = np.einsum("bhqk,bkhd->bqhd", a, v).reshape(n * 3, H)
        x = layer_norm(x + dense(c, t["attn_out"]), t["ln1"])
        h = dense(x, t["ffn_in"])
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = layer_norm(x + dense(h, t["ffn_out"]), t["ln2"])
    out[ids] = x.reshape(n, 3, H).mean(1)

def pca(x, k):
    """x projected on its first k principal axes, each axis's sign fixed so that its largest
    component is positive (LAPACK may return either sign)."""
    x = x - x.mean(0)
    vals, vecs = np.linalg.eigh(x.T @ x / len(x))
    vecs = vecs[:, np.argsort(vals)[::-1][:k]]
    sign = np.sign(vecs[np.abs(vecs).argmax(0), np.arange(k)])
    return x @ (vecs * sign)

out -= out.mean(0)
if dims < H:
    out = pca(out, dims)  # before the weighting, as Model2Vec does (after it scored lower)
rank = np.arange(1, V + 1, dtype=np.float64)
p = (1.0 / rank) / (1.0 / rank).sum()
out *= (SIF_A / (SIF_A + p))[:, None]
scale = np.abs(out).max(axis=1) / 127.0
scale[scale == 0] = 1.0
codes = np.clip(np.rint(out / scale[:, None]), -127, 127).astype(np.int8)
blob = "\n".join(vocab).encode("utf-8")
with open(dst, "wb") as f:
    f.write(b"PPTV0001")
    f.write(struct.pack("<4I", V, out.shape[1], max_tokens, len(blob)))
    f.write(blob)
    f.write(scale.astype("<f4").tobytes())
    f.write(codes.tobytes())
print(f"fetch-token-vectors: {V} tokens x {out.shape[1]} dims", file=sys.stderr)
PYEOF
if [[ -n "$OUT_SHA256" && "$(sha256_of "$TMP")" != "$OUT_SHA256" ]]; then
  echo "fetch-token-vectors: warning: the distilled file has checksum $(sha256_of "$TMP")," \
    "not the $OUT_SHA256 measured in docs/clustering.md (another numpy or CPU?)" >&2
fi
mv "$TMP" "$OUT"
trap - EXIT
echo "fetch-token-vectors: wrote $OUT" >&2
