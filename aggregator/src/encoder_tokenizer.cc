#include "encoder_tokenizer.h"

#include <algorithm>

#include "encoder_unicode.h"

namespace painpoint::aggregator::encoder {

namespace {

constexpr char32_t kReplacement = 0xFFFD;
// The library's limit: longer words become a single [UNK].
constexpr std::size_t kMaxWordChars = 100;

// The CJK ideograph blocks the BERT normalizer surrounds with spaces (the tokenizers library's
// list, including its 0x2B920 start of the fourth extension block).
bool is_chinese(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// The clean-up, CJK spacing, NFD, mark stripping and lowercasing of the BERT normalizer; each
// step works on single code points, so they compose into one pass.
void normalize(const std::u32string& in, std::u32string& out) {
  char32_t buf[4];
  for (const char32_t c : in) {
    const CharClass cls = char_class(c);
    if (cls == CharClass::kControl || cls == CharClass::kMark) continue;
    if (cls == CharClass::kSpace) {
      out += U' ';
      continue;
    }
    const bool chinese = is_chinese(c);
    if (chinese) out += U' ';
    const std::size_t n = normalize_char(c, buf);
    out.append(buf, n);
    if (chinese) out += U' ';
  }
}

}  // namespace

CharClass char_class(char32_t cp) {
  const std::uint32_t* end = kClassStarts + kClassCount;
  const std::uint32_t* it = std::upper_bound(kClassStarts, end, static_cast<std::uint32_t>(cp));
  if (it == kClassStarts) return CharClass::kControl;  // unreachable: the table starts at 0
  return static_cast<CharClass>(kClassValues[it - kClassStarts - 1]);
}

std::size_t normalize_char(char32_t cp, char32_t* out) {
  // Hangul syllables decompose algorithmically into 2 or 3 jamo (Unicode section 3.12).
  constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
  constexpr char32_t kVCount = 21, kTCount = 28, kSCount = 11172;
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out[0] = kLBase + s / (kVCount * kTCount);
    out[1] = kVBase + (s % (kVCount * kTCount)) / kTCount;
    if (s % kTCount == 0) return 2;
    out[2] = kTBase + s % kTCount;
    return 3;
  }
  const MapEntry* end = kMapEntries + kMapCount;
  const MapEntry* it =
      std::lower_bound(kMapEntries, end, static_cast<std::uint32_t>(cp),
                       [](const MapEntry& e, std::uint32_t c) { return e.cp < c; });
  if (it == end || it->cp != cp) {
    out[0] = cp;
    return 1;
  }
  std::copy_n(kMapPool + it->offset, it->length, out);
  return it->length;
}

void decode_utf8(std::string_view text, std::u32string& out) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      out += static_cast<char32_t>(b);
      ++i;
      continue;
    }
    // Expected length and the allowed range of the second byte (Unicode Table 3-7).
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    if (len == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    char32_t c = b & (0xFF >> (len + 1));
    std::size_t k = 1;
    for (; k < len && i + k < n; ++k) {
      const unsigned char t = s[i + k];
      const bool ok = k == 1 ? (t >= lo && t <= hi) : (t >= 0x80 && t <= 0xBF);
      if (!ok) break;
      c = (c << 6) | (t & 0x3F);
    }
    if (k == len) {
      out += c;
    } else {
      out += kReplacement;  // the maximal valid prefix; the offending byte starts over
    }
    i += k;
  }
}

WordPiece::WordPiece(const std::vector<std::string_view>& vocab, std::size_t max_tokens)
    : max_tokens_(max_tokens) {
  ids_.reserve(vocab.size());
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    ids_.emplace(std::string(vocab[i]), static_cast<std::int32_t>(i));
  }
  cls_ = find("[CLS]");
  sep_ = find("[SEP]");
  unk_ = find("[UNK]");
}

std::int32_t WordPiece::find(std::string_view token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

void WordPiece::add_word(std::string_view word, std::size_t chars,
                         std::vector<std::int32_t>& ids) const {
  if (chars > kMaxWordChars) {
    ids.push_back(unk_);
    return;
  }
  const std::size_t first = ids.size();
  std::string piece;
  std::size_t start = 0;
  while (start < word.size()) {
    std::size_t end = word.size();
    std::int32_t id = -1;
    // Greedy longest match, shrinking by whole code points (never inside a UTF-8 sequence).
    while (end > start) {
      piece.assign(start > 0 ? "##" : "");
      piece.append(word.substr(start, end - start));
      id = find(piece);
      if (id >= 0) break;
      do {
        --end;
      } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (id < 0) {
      ids.resize(first);
      ids.push_back(unk_);
      return;
    }
    ids.push_back(id);
    start = end;
  }
}

std::vector<std::int32_t> WordPiece::tokenize(std::string_view text) const {
  std::u32string decoded;
  decode_utf8(text, decoded);
  std::u32string normalized;
  normalized.reserve(decoded.size());
  normalize(decoded, normalized);

  std::vector<std::int32_t> ids{cls_};
  const std::size_t limit = max_tokens_ - 1;  // room for [SEP]
  std::string word;
  std::size_t chars = 0;
  auto flush = [&] {
    if (!word.empty()) add_word(word, chars, ids);
    word.clear();
    chars = 0;
  };
  for (const char32_t c : normalized) {
    if (ids.size() >= limit) break;
    const CharClass cls = char_class(c);
    if (cls == CharClass::kSpace) {
      flush();
    } else if (cls == CharClass::kPunct) {
      flush();
      append_utf8(c, word);
      chars = 1;
      flush();
    } else {
      append_utf8(c, word);
      ++chars;
    }
  }
  if (ids.size() < limit) flush();
  if (ids.size() > limit) ids.resize(limit);
  ids.push_back(sep_);
  return ids;
}

}  // namespace painpoint::aggregator::encoder
