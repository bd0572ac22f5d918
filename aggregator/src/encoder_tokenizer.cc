#include "encoder_tokenizer.h"

#include <algorithm>

#include "encoder_unicode.h"
#include "painpoint/aggregator/text.h"
#include "painpoint/base/utf8.h"

namespace painpoint::aggregator::encoder {

namespace {

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

CharClass char_class_slow(char32_t cp) {
  const std::uint32_t* end = kClassStarts + kClassCount;
  const std::uint32_t* it = std::upper_bound(kClassStarts, end, static_cast<std::uint32_t>(cp));
  if (it == kClassStarts) return CharClass::kControl;  // unreachable: the table starts at 0
  return static_cast<CharClass>(kClassValues[it - kClassStarts - 1]);
}

// ASCII: the class and the normalized code point of each, read from the tables once. Feedback is
// mostly ASCII, and the binary searches were a tenth of the static token vectors' cost.
struct AsciiTable {
  CharClass cls[128];
  char32_t lower[128];  // 0: not one code point, ask the tables
};

std::size_t normalize_char_slow(char32_t cp, char32_t* out);

AsciiTable make_ascii_table() {
  AsciiTable t{};
  for (char32_t c = 0; c < 128; ++c) {
    t.cls[c] = char_class_slow(c);
    char32_t buf[4];
    t.lower[c] = normalize_char_slow(c, buf) == 1 ? buf[0] : 0;
  }
  return t;
}

std::size_t normalize_char_slow(char32_t cp, char32_t* out) {
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

// Dynamic initialization, after the tables it reads (constant-initialized arrays).
const AsciiTable kAscii = make_ascii_table();

}  // namespace

CharClass char_class(char32_t cp) { return cp < 128 ? kAscii.cls[cp] : char_class_slow(cp); }

std::size_t normalize_char(char32_t cp, char32_t* out) {
  if (cp < 128 && kAscii.lower[cp] != 0) {
    out[0] = kAscii.lower[cp];
    return 1;
  }
  return normalize_char_slow(cp, out);
}

void decode_utf8(std::string_view text, std::u32string& out) {
  for (std::size_t i = 0; i < text.size();) out += base::decode_utf8(text, i);
}

WordPiece::WordPiece(const std::vector<std::string_view>& vocab, std::size_t max_tokens)
    : max_tokens_(max_tokens) {
  std::size_t size = 16;
  while (size < 2 * vocab.size()) size *= 2;
  slots_.resize(size);
  mask_ = size - 1;
  tokens_.reserve(vocab.size());
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    tokens_.emplace_back(vocab[i]);
    if (find(vocab[i]) >= 0) continue;  // a repeated token: the first id wins, as before
    const std::uint64_t h = fnv1a64(vocab[i]);
    std::uint64_t at = h & mask_;
    while (slots_[at].id >= 0) at = (at + 1) & mask_;
    slots_[at] = Slot{h, static_cast<std::int32_t>(i)};
  }
  cls_ = find("[CLS]");
  sep_ = find("[SEP]");
  unk_ = find("[UNK]");
}

std::int32_t WordPiece::find(std::string_view token) const {
  const std::uint64_t h = fnv1a64(token);
  for (std::uint64_t at = h & mask_;; at = (at + 1) & mask_) {
    const Slot& slot = slots_[at];
    if (slot.id < 0) return -1;
    if (slot.hash == h && tokens_[static_cast<std::size_t>(slot.id)] == token) return slot.id;
  }
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
      } while (end > start && base::is_utf8_continuation(word[end]));
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
  std::vector<std::int32_t> ids{cls_};
  const std::size_t limit = max_tokens_ - 1;  // room for [SEP]
  append_ids(text, limit, ids);
  if (ids.size() > limit) ids.resize(limit);
  ids.push_back(sep_);
  return ids;
}

void WordPiece::append_ids(std::string_view text, std::size_t limit,
                           std::vector<std::int32_t>& ids) const {
  std::u32string decoded;
  decode_utf8(text, decoded);
  std::u32string normalized;
  normalized.reserve(decoded.size());
  normalize(decoded, normalized);

  std::string word;
  std::size_t chars = 0;
  auto flush = [&] {
    if (!word.empty()) add_word(word, chars, ids);
    word.clear();
    chars = 0;
  };
  for (const char32_t c : normalized) {
    if (ids.size() >= limit) return;
    const CharClass cls = char_class(c);
    if (cls == CharClass::kSpace) {
      flush();
    } else if (cls == CharClass::kPunct) {
      flush();
      base::append_utf8(word, c);
      chars = 1;
      flush();
    } else {
      base::append_utf8(word, c);
      ++chars;
    }
  }
  if (ids.size() < limit) flush();
}

}  // namespace painpoint::aggregator::encoder
