#include "painpoint/aggregator/text.h"

#include <libstemmer.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>

#include "painpoint/base/utf8.h"

namespace painpoint::aggregator {
namespace {

// Sorted, so that lookups are a binary search without a static hash set.
constexpr std::array<std::string_view, 139> kStopWords = {
    "about",   "above",      "after",   "again",  "against", "all",       "also",    "am",
    "an",      "and",        "any",     "are",    "as",      "at",        "be",      "because",
    "been",    "before",     "being",   "below",  "between", "both",      "but",     "by",
    "can",     "could",      "did",     "do",     "does",    "doing",     "down",    "during",
    "each",    "even",       "ever",    "few",    "for",     "from",      "further", "get",
    "got",     "had",        "has",     "have",   "having",  "he",        "hello",   "her",
    "here",    "hers",       "herself", "hey",    "hi",      "him",       "himself", "his",
    "how",     "if",         "im",      "in",     "into",    "is",        "it",      "its",
    "itself",  "ive",        "just",    "let",    "me",      "more",      "most",    "much",
    "my",      "myself",     "of",      "off",    "ok",      "on",        "once",    "only",
    "or",      "other",      "ought",   "our",    "ours",    "ourselves", "out",     "over",
    "own",     "please",     "really",  "same",   "she",     "should",    "so",      "some",
    "such",    "than",       "thank",   "thanks", "that",    "the",       "their",   "theirs",
    "them",    "themselves", "then",    "there",  "these",   "they",      "this",    "those",
    "through", "to",         "too",     "under",  "until",   "up",        "us",      "very",
    "was",     "we",         "were",    "what",   "when",    "where",     "which",   "while",
    "who",     "whom",       "why",     "will",   "with",    "would",     "yes",     "you",
    "your",    "yours",      "yourself"};

static_assert(std::is_sorted(kStopWords.begin(), kStopWords.end()));

// Lowercase of one code point for the scripts we meet in feedback; others pass unchanged.
char32_t to_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
      c != 0x17F) {
    const bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_lower) return (c % 2 == 1) ? c + 1 : c;
    return (c % 2 == 0) ? c + 1 : c;
  }
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

// Letters for our purposes: ASCII letters and every non-ASCII code point outside the common
// punctuation, symbol and space blocks.
bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (c < 0xC0) return false;                    // Latin-1 punctuation and symbols
  if (c == 0xD7 || c == 0xF7) return false;      // multiplication, division signs
  if (c >= 0x2000 && c <= 0x2BFF) return false;  // punctuation, symbols, arrows, shapes
  if (c >= 0x3000 && c <= 0x303F) return false;  // CJK punctuation
  if (c >= 0xFE00 && c <= 0xFE0F) return false;  // variation selectors
  if (c >= 0x1F000) return false;                // emoji
  return true;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

bool looks_like_url(std::string_view chunk) {
  return chunk.starts_with("http://") || chunk.starts_with("https://") || chunk.starts_with("www.");
}

bool looks_like_email(std::string_view chunk) {
  const auto at = chunk.find('@');
  return at != std::string_view::npos && at > 0 && chunk.find('.', at) != std::string_view::npos;
}

// kStopWords[kStopWordsFrom[c - 'a'] .. kStopWordsFrom[c - 'a' + 1]) start with letter c: a
// lookup compares against a handful of words instead of binary-searching all of them.
constexpr std::array<std::uint8_t, 27> kStopWordsFrom = [] {
  std::array<std::uint8_t, 27> from{};
  std::size_t i = 0;
  for (std::size_t c = 0; c < 26; ++c) {
    from[c] = static_cast<std::uint8_t>(i);
    while (i < kStopWords.size() && kStopWords[i][0] == static_cast<char>('a' + c)) ++i;
  }
  from[26] = static_cast<std::uint8_t>(i);
  return from;
}();
static_assert(kStopWordsFrom[26] == kStopWords.size(), "every stop word starts with a-z");

// Stop words by first letter and length: most words share neither with any stop word and are
// rejected by one table look-up; the others compare with one or two candidates of their length.
constexpr std::size_t kLongestStopWord = 10;
static_assert(std::all_of(kStopWords.begin(), kStopWords.end(),
                          [](std::string_view w) { return w.size() <= kLongestStopWord; }));

// For letter c and length n: the kStopWords indices of the words that start with c and have n
// letters are index[at[c][n]] .. index[at[c][n + 1] - 1].
struct StopWordTable {
  std::array<std::array<std::uint8_t, kLongestStopWord + 2>, 26> at{};
  std::array<std::uint8_t, kStopWords.size()> index{};
};

constexpr StopWordTable kStopWordTable = [] {
  StopWordTable t;
  std::size_t next = 0;
  for (std::size_t c = 0; c < 26; ++c) {
    for (std::size_t n = 0; n <= kLongestStopWord; ++n) {
      t.at[c][n] = static_cast<std::uint8_t>(next);
      for (std::size_t i = kStopWordsFrom[c]; i < kStopWordsFrom[c + 1]; ++i) {
        if (kStopWords[i].size() == n) t.index[next++] = static_cast<std::uint8_t>(i);
      }
    }
    t.at[c][kLongestStopWord + 1] = static_cast<std::uint8_t>(next);
  }
  return t;
}();

constexpr bool is_ascii_word_char(char b) {
  return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z');
}

constexpr char lower_ascii(char b) {
  if (b == '`') return '\'';
  return (b >= 'A' && b <= 'Z') ? static_cast<char>(b + 32) : b;
}

}  // namespace

bool is_word_code_point(char32_t c) { return is_letter(c) || (c >= '0' && c <= '9'); }

bool is_stop_word(std::string_view word) {
  if (word.size() > kLongestStopWord || word.empty() || word[0] < 'a' || word[0] > 'z') {
    return false;
  }
  const auto& at = kStopWordTable.at[static_cast<std::size_t>(word[0] - 'a')];
  for (std::size_t k = at[word.size()]; k < at[word.size() + 1]; ++k) {
    if (kStopWords[kStopWordTable.index[k]] == word) return true;
  }
  return false;
}

void Tokenizer::tokenize(std::string_view text, Tokens& out) {
  out.clear();
  // Pass 1: lowercase code points; the apostrophe variants become "'".
  lowered_.clear();
  for (std::size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {  // ASCII, most text: a run at a time
      std::size_t end = i + 1;
      while (end < text.size() && static_cast<unsigned char>(text[end]) < 0x80) ++end;
      const std::size_t from = lowered_.size();
      lowered_.append(text.data() + i, end - i);
      for (std::size_t k = from; k < lowered_.size(); ++k) lowered_[k] = lower_ascii(lowered_[k]);
      i = end;
      continue;
    }
    char32_t c = base::decode_utf8(text, i);
    if (c == 0x2019 || c == 0x2018) c = '\'';
    base::append_utf8(lowered_, to_lower(c));
  }
  const std::string_view s = lowered_;
  auto emit = [&](std::string_view w) {
    if (w.size() < 2 && w != "_") return;
    if (is_stop_word(w)) return;
    out.push(w);
  };
  // Pass 2: whitespace chunks (URLs and e-mails are recognised whole), then words.
  std::size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && is_space(s[pos])) ++pos;
    std::size_t end = pos;
    bool has_at = false;  // most chunks have none: no search for an e-mail address
    for (; end < s.size() && !is_space(s[end]); ++end) has_at |= s[end] == '@';
    const std::string_view chunk = s.substr(pos, end - pos);
    pos = end;
    if (chunk.empty()) continue;
    if ((chunk[0] == 'h' || chunk[0] == 'w') && looks_like_url(chunk)) {
      out.push("_url_");
      continue;
    }
    if ((has_at && looks_like_email(chunk)) || chunk == "[email]") {
      out.push("_email_");
      continue;
    }
    std::size_t i = 0;
    while (i < chunk.size()) {
      word_.clear();
      bool digit = false;
      bool any = false;
      bool apostrophe = false;  // contractions are rare: only then look for them
      while (i < chunk.size()) {
        if (is_ascii_word_char(chunk[i])) {  // a run of ASCII letters and digits at once
          std::size_t run_end = i;
          for (; run_end < chunk.size() && is_ascii_word_char(chunk[run_end]); ++run_end) {
            digit |= (chunk[run_end] >= '0' && chunk[run_end] <= '9');
          }
          word_.append(chunk.data() + i, run_end - i);
          any = true;
          i = run_end;
          continue;
        }
        std::size_t next = i;
        const char32_t c = base::decode_utf8(chunk, next);
        if (is_letter(c) || (c >= '0' && c <= '9')) {
          digit |= (c >= '0' && c <= '9');
          base::append_utf8(word_, c);
          any = true;
          i = next;
        } else if ((c == '.' || c == ',') && digit && next < chunk.size() && chunk[next] >= '0' &&
                   chunk[next] <= '9') {
          i = next;  // 42.50 and 1,000 are one number
        } else if (c == '\'' && any && next < chunk.size()) {
          word_.push_back('\'');
          apostrophe = true;
          i = next;
        } else {
          i = next;
          if (any) break;
        }
      }
      if (!any) continue;
      while (!word_.empty() && word_.back() == '\'') word_.pop_back();
      if (digit) {
        out.push("_num_");
        continue;
      }
      std::string_view w = word_;
      if (!apostrophe) {
        emit(w);
        continue;
      }
      if (w.ends_with("n't")) {
        w.remove_suffix(3);
        if (w == "ca") w = "can";
        if (w == "wo") w = "will";
        emit(w);
        out.push("not");
        continue;
      }
      if (w.ends_with("'s")) w.remove_suffix(2);
      // Other contractions (i'm, you've, i'd): drop the apostrophe so they hit the stop list.
      std::string joined;
      if (w.find('\'') != std::string_view::npos) {
        for (char c : w)
          if (c != '\'') joined.push_back(c);
        w = joined;
      }
      emit(w);
    }
  }
}

Stemmer::Stemmer() : stemmer_(sb_stemmer_new("english", "UTF_8")) {
  if (stemmer_ == nullptr) throw std::runtime_error("libstemmer: english stemmer unavailable");
}

Stemmer::~Stemmer() { sb_stemmer_delete(stemmer_); }

std::string_view Stemmer::stem(std::string_view word) {
  const sb_symbol* out = sb_stemmer_stem(stemmer_, reinterpret_cast<const sb_symbol*>(word.data()),
                                         static_cast<int>(word.size()));
  if (out == nullptr) return word;
  return std::string_view(reinterpret_cast<const char*>(out),
                          static_cast<std::size_t>(sb_stemmer_length(stemmer_)));
}

}  // namespace painpoint::aggregator
