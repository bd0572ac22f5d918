#!/usr/bin/env python3
"""Generates aggregator/src/encoder_unicode.cc: the Unicode tables of the encoder's tokenizer.

Usage: scripts/gen-encoder-unicode.py > aggregator/src/encoder_unicode.cc

The tables come from this Python's unicodedata (its Unicode version is written into the output).
They reproduce the BERT normalizer of the HF tokenizers library (uncased, strip_accents unset):
  - a class per code point: control (dropped by the cleaner: U+0000, U+FFFD, categories Cc, Cf,
    Co, Cs; not Cn, which the library keeps; tab/newline/return are spaces), space (Zs,
    U+2028/U+2029: Rust's char::is_whitespace minus the C* code points), punctuation (ASCII
    punctuation and P*), mark (Mn: dropped after NFD), other;
  - LEGACY: the library classifies with tables of an older Unicode version than Python's, so
    code points that became Mn, P* or Cf later are "other" there (and U+166D, Po then, is
    punctuation). `--probe TOKENIZER_JSON` (needs the tokenizers package) compares every code
    point with the library and prints the ranges that differ, which is how LEGACY was made;
    it prints nothing when the tables agree with the library.
  - a map from a code point to its NFD decomposition without Mn marks, lowercased one code point
    at a time (the library lowercases per char, without Python's final-sigma context rule).
    Hangul syllables are decomposed by the C++ code (algorithmic, 11,172 of them).
"""
import sys
import unicodedata

MAX = 0x110000
OTHER, CONTROL, SPACE, PUNCT, MARK = range(5)
# (first, last, class) overrides; see the module docstring.
LEGACY = [
    (0x61D, 0x61D, OTHER), (0x7FD, 0x7FD, OTHER), (0x890, 0x891, OTHER), (0x898, 0x89F, OTHER),
    (0x8CA, 0x8E2, OTHER), (0x9FD, 0x9FE, OTHER), (0xA76, 0xA76, OTHER), (0xAFA, 0xAFF, OTHER),
    (0xB55, 0xB55, OTHER), (0xC04, 0xC04, OTHER), (0xC3C, 0xC3C, OTHER), (0xC77, 0xC77, OTHER),
    (0xC84, 0xC84, OTHER), (0xD00, 0xD00, OTHER), (0xD3B, 0xD3C, OTHER), (0xD81, 0xD81, OTHER),
    (0xEBA, 0xEBA, OTHER), (0x166D, 0x166D, PUNCT), (0x1734, 0x1734, MARK),
    (0x180F, 0x180F, OTHER), (0x1885, 0x1886, OTHER), (0x1ABF, 0x1ACE, OTHER),
    (0x1B7D, 0x1B7E, OTHER), (0x1DF6, 0x1DFB, OTHER), (0x1FEF, 0x1FEF, PUNCT),
    (0x2260, 0x2260, PUNCT), (0x226E, 0x226F, PUNCT), (0x2E43, 0x2E4F, OTHER),
    (0x2E52, 0x2E5D, OTHER), (0xA82C, 0xA82C, OTHER), (0xA8C5, 0xA8C5, OTHER),
    (0xA8FF, 0xA8FF, OTHER), (0xA9BD, 0xA9BD, OTHER), (0x10D24, 0x10D27, OTHER),
    (0x10EAB, 0x10EAD, OTHER), (0x10F46, 0x10F50, OTHER), (0x10F55, 0x10F59, OTHER),
    (0x10F82, 0x10F89, OTHER), (0x11070, 0x11070, OTHER), (0x11073, 0x11074, OTHER),
    (0x110C2, 0x110C2, OTHER), (0x110CD, 0x110CD, OTHER), (0x111C9, 0x111C9, PUNCT),
    (0x111CF, 0x111CF, OTHER), (0x1123E, 0x1123E, OTHER), (0x1133B, 0x1133B, OTHER),
    (0x11438, 0x1143F, OTHER), (0x11442, 0x11444, OTHER), (0x11446, 0x11446, OTHER),
    (0x1144B, 0x1144F, OTHER), (0x1145A, 0x1145B, OTHER), (0x1145D, 0x1145E, OTHER),
    (0x11660, 0x1166C, OTHER), (0x116B9, 0x116B9, OTHER), (0x1182F, 0x11837, OTHER),
    (0x11839, 0x1183B, OTHER), (0x1193B, 0x1193C, OTHER), (0x1193E, 0x1193E, OTHER),
    (0x11943, 0x11946, OTHER), (0x119D4, 0x119D7, OTHER), (0x119DA, 0x119DB, OTHER),
    (0x119E0, 0x119E0, OTHER), (0x119E2, 0x119E2, OTHER), (0x11A01, 0x11A0A, OTHER),
    (0x11A33, 0x11A38, OTHER), (0x11A3B, 0x11A47, OTHER), (0x11A51, 0x11A56, OTHER),
    (0x11A59, 0x11A5B, OTHER), (0x11A8A, 0x11A96, OTHER), (0x11A98, 0x11A9C, OTHER),
    (0x11A9E, 0x11AA2, OTHER), (0x11C30, 0x11C36, OTHER), (0x11C38, 0x11C3D, OTHER),
    (0x11C3F, 0x11C3F, OTHER), (0x11C41, 0x11C45, OTHER), (0x11C70, 0x11C71, OTHER),
    (0x11C92, 0x11CA7, OTHER), (0x11CAA, 0x11CB0, OTHER), (0x11CB2, 0x11CB3, OTHER),
    (0x11CB5, 0x11CB6, OTHER), (0x11D31, 0x11D36, OTHER), (0x11D3A, 0x11D3A, OTHER),
    (0x11D3C, 0x11D3D, OTHER), (0x11D3F, 0x11D45, OTHER), (0x11D47, 0x11D47, OTHER),
    (0x11D90, 0x11D91, OTHER), (0x11D95, 0x11D95, OTHER), (0x11D97, 0x11D97, OTHER),
    (0x11EF3, 0x11EF4, OTHER), (0x11EF7, 0x11EF8, OTHER), (0x11FFF, 0x11FFF, OTHER),
    (0x12FF1, 0x12FF2, OTHER), (0x13430, 0x13438, OTHER), (0x16E97, 0x16E9A, OTHER),
    (0x16F4F, 0x16F4F, OTHER), (0x16FE2, 0x16FE2, OTHER), (0x16FE4, 0x16FE4, OTHER),
    (0x1CF00, 0x1CF2D, OTHER), (0x1CF30, 0x1CF46, OTHER), (0x1E000, 0x1E006, OTHER),
    (0x1E008, 0x1E018, OTHER), (0x1E01B, 0x1E021, OTHER), (0x1E023, 0x1E024, OTHER),
    (0x1E026, 0x1E02A, OTHER), (0x1E130, 0x1E136, OTHER), (0x1E2AE, 0x1E2AE, OTHER),
    (0x1E2EC, 0x1E2EF, OTHER), (0x1E944, 0x1E94A, OTHER), (0x1E95E, 0x1E95F, OTHER),
]
# Lowercase mappings of code points assigned after Python's Unicode version (the library's
# lowercasing is Rust's, of a newer version).
NEWER_MAP = {
    0x1C89: [0x1C8A], 0xA7CB: [0x264], 0xA7CC: [0xA7CD], 0xA7CE: [0xA7CF], 0xA7D2: [0xA7D3],
    0xA7D4: [0xA7D5], 0xA7DA: [0xA7DB], 0xA7DC: [0x19B], 0x10D50: [0x10D70], 0x10D51: [0x10D71],
    0x10D52: [0x10D72], 0x10D53: [0x10D73], 0x10D54: [0x10D74], 0x10D55: [0x10D75],
    0x10D56: [0x10D76], 0x10D57: [0x10D77], 0x10D58: [0x10D78], 0x10D59: [0x10D79],
    0x10D5A: [0x10D7A], 0x10D5B: [0x10D7B], 0x10D5C: [0x10D7C], 0x10D5D: [0x10D7D],
    0x10D5E: [0x10D7E], 0x10D5F: [0x10D7F], 0x10D60: [0x10D80], 0x10D61: [0x10D81],
    0x10D62: [0x10D82], 0x10D63: [0x10D83], 0x10D64: [0x10D84], 0x10D65: [0x10D85],
    0x16EA0: [0x16EBB], 0x16EA1: [0x16EBC], 0x16EA2: [0x16EBD], 0x16EA3: [0x16EBE],
    0x16EA4: [0x16EBF], 0x16EA5: [0x16EC0], 0x16EA6: [0x16EC1], 0x16EA7: [0x16EC2],
    0x16EA8: [0x16EC3], 0x16EA9: [0x16EC4], 0x16EAA: [0x16EC5], 0x16EAB: [0x16EC6],
    0x16EAC: [0x16EC7], 0x16EAD: [0x16EC8], 0x16EAE: [0x16EC9], 0x16EAF: [0x16ECA],
    0x16EB0: [0x16ECB], 0x16EB1: [0x16ECC], 0x16EB2: [0x16ECD], 0x16EB3: [0x16ECE],
    0x16EB4: [0x16ECF], 0x16EB5: [0x16ED0], 0x16EB6: [0x16ED1], 0x16EB7: [0x16ED2],
    0x16EB8: [0x16ED3],
}


def char_class(cp):
    for lo, hi, cls in LEGACY:
        if lo <= cp <= hi:
            return cls
    if cp in (9, 10, 13, 0x2028, 0x2029):
        return SPACE
    if cp in (0, 0xFFFD):
        return CONTROL
    cat = unicodedata.category(chr(cp))
    if cat.startswith("C") and cat != "Cn":
        return CONTROL
    if cat == "Zs":
        return SPACE
    if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126):
        return PUNCT
    if cat.startswith("P"):
        return PUNCT
    if cat == "Mn":
        return MARK
    return OTHER


def normalized(cp):
    if cp in NEWER_MAP:
        return NEWER_MAP[cp]
    out = []
    for d in unicodedata.normalize("NFD", chr(cp)):
        if char_class(ord(d)) == MARK:
            continue
        out.extend(ord(x) for x in d.lower())
    return out


def is_chinese(cp):
    return any(lo <= cp <= hi for lo, hi in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


def probe(tokenizer_json):
    """Prints the code point ranges where these tables and the tokenizers library disagree."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer_json)
    diffs, newer_map = [], []
    for cp in range(MAX):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        lib = tok.normalizer.normalize_str(chr(cp))
        cls = char_class(cp)
        mine = {CONTROL: "", MARK: "", SPACE: " "}.get(cls)
        if mine is None:
            mine = "".join(chr(x) for x in normalized(cp))
            if is_chinese(cp):
                mine = " " + mine + " "
        want = cls
        if lib != mine:
            if lib == chr(cp):
                want = OTHER
            elif lib == "":
                want = MARK if unicodedata.category(chr(cp)).startswith("M") else CONTROL
            elif cls == OTHER and lib.strip() and " " not in lib:
                newer_map.append((cp, [ord(x) for x in lib]))
            else:
                want = None
        if want in (OTHER, PUNCT) and len(lib) == 1 and not is_chinese(cp):
            words = tok.pre_tokenizer.pre_tokenize_str("a" + lib + "b")
            want = PUNCT if len(words) == 3 else OTHER if len(words) == 1 else None
        if want != cls:
            diffs.append((cp, want, unicodedata.category(chr(cp)), lib, mine))
    ranges = []
    for cp, want, *_ in diffs:
        if ranges and ranges[-1][1] == cp - 1 and ranges[-1][2] == want:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, want])
    names = {OTHER: "OTHER", PUNCT: "PUNCT", MARK: "MARK", CONTROL: "CONTROL"}
    print("LEGACY = [")
    for lo, hi, want in ranges:
        print("    (0x%X, 0x%X, %s)," % (lo, hi, names.get(want, want)))
    print("]\nNEWER_MAP = {")
    for cp, out in newer_map:
        print("    0x%X: [%s]," % (cp, ", ".join("0x%X" % x for x in out)))
    print("}")
    unexplained = [d for d in diffs if d[1] is None]
    for d in unexplained[:20]:
        print("unexplained:", hex(d[0]), d[2], repr(d[3]), repr(d[4]), file=sys.stderr)
    print("%d code points differ, %d mapped, %d unexplained"
          % (len(diffs), len(newer_map), len(unexplained)), file=sys.stderr)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        probe(sys.argv[2])
        return
    starts, classes = [], []
    for cp in range(MAX):
        c = char_class(cp)
        if not classes or classes[-1] != c:
            starts.append(cp)
            classes.append(c)
    keys, offsets, lengths, pool = [], [], [], []
    for cp in range(MAX):
        if 0xAC00 <= cp <= 0xD7A3 or char_class(cp) in (CONTROL, MARK):
            continue
        n = normalized(cp)
        if n == [cp]:
            continue
        keys.append(cp)
        offsets.append(len(pool))
        lengths.append(len(n))
        pool.extend(n)
    assert len(pool) < 65536 and max(lengths) < 256

    w = sys.stdout.write
    w("// Generated by scripts/gen-encoder-unicode.py from Python %s's unicodedata (Unicode %s).\n"
      % (sys.version.split()[0], unicodedata.unidata_version))
    w("// Do not edit: run the script again.\n// clang-format off\n")
    w('#include "encoder_unicode.h"\n\nnamespace painpoint::aggregator::encoder {\n\n')
    w("const std::uint32_t kClassStarts[] = {\n")
    for i in range(0, len(starts), 14):
        w("    " + ", ".join("0x%X" % s for s in starts[i:i + 14]) + ",\n")
    w("};\nconst std::uint8_t kClassValues[] = {\n")
    for i in range(0, len(classes), 48):
        w("    " + ",".join(str(c) for c in classes[i:i + 48]) + ",\n")
    w("};\nconst std::size_t kClassCount = %d;\n\n" % len(starts))
    w("const MapEntry kMapEntries[] = {\n")
    for i in range(0, len(keys), 6):
        w("    " + " ".join("{0x%X, %d, %d}," % e
                            for e in zip(keys[i:i + 6], offsets[i:i + 6], lengths[i:i + 6])) + "\n")
    w("};\nconst std::size_t kMapCount = %d;\n\n" % len(keys))
    w("const char32_t kMapPool[] = {\n")
    for i in range(0, len(pool), 14):
        w("    " + ", ".join("0x%X" % p for p in pool[i:i + 14]) + ",\n")
    w("};\n\n}  // namespace painpoint::aggregator::encoder\n")


if __name__ == "__main__":
    main()
