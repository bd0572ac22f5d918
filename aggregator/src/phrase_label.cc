#include "phrase_label.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "painpoint/base/utf8.h"

namespace painpoint::aggregator {
namespace {

// PhraseLabeler::Word::flags
constexpr std::uint16_t kPhrasal = 1;             // a verb that takes a particle ("log")
constexpr std::uint16_t kParticle = 2;            // "in", "out", "up"...
constexpr std::uint16_t kStarter = 4;             // may start, not end ("get", "every")
constexpr std::uint16_t kOpensObject = 8;         // "a", "the", "my", "it"...
constexpr std::uint16_t kTo = 16;                 // "to"
constexpr std::uint16_t kClauseFirst = 32;        // no meaningful word before it in its segment
constexpr std::uint16_t kClauseLast = 64;         // none after it
constexpr std::uint16_t kAfterStop = 128;         // the previous word is a stop word
constexpr std::uint16_t kBeforeStop = 256;        // the next word is a stop word other than "to"
constexpr std::uint16_t kBeforeMeaningful = 512;  // the next word is not a stop word
constexpr std::uint16_t kCannotEnd = 1024;        // its object, particle or noun follows

constexpr std::uint16_t kFunctionWord = 2048;  // a token, not a stop word, but no content
constexpr std::uint16_t kNegation = 4096;      // "not", "never", "cannot"...
constexpr std::uint16_t kDeterminer = 8192;    // "the", "my": a noun phrase follows

// Tokens the tokenizer keeps (they are not stop words) that still make a poor first or last word
// of a label: prepositions, conjunctions, determiners, modals and chat fillers.
constexpr std::string_view kFunctionWords[] = {
    "across",  "along", "already", "although", "among",    "another", "anyone",  "anything",
    "around",  "asap",  "behind",  "beside",   "besides",  "beyond",  "btw",     "despite",
    "either",  "etc",   "every",   "everyone", "fyi",      "imho",    "imo",     "inside",
    "instead", "like",  "lol",     "may",      "might",    "must",    "near",    "neither",
    "okay",    "onto",  "outside", "per",      "pls",      "plz",     "shall",   "since",
    "someone", "still", "though",  "thx",      "till",     "toward",  "towards", "ugh",
    "unless",  "upon",  "via",     "whatever", "whenever", "whether", "whose",   "within",
    "without", "yet"};

// A label may read "cannot sign in", but "SMS is not" leaves the reader hanging.
constexpr std::string_view kNegations[] = {"not", "no", "nor", "never", "cannot"};

// Verbs that take a particle: a label may end on "log in" or "times out", though "in" and
// "out" are stop words.
constexpr std::string_view kPhrasalVerbs[] = {
    "back",    "backed",  "booted", "check",   "checked", "checking", "checks", "kick",
    "kicked",  "kicks",   "lock",   "locked",  "locks",   "log",      "logged", "logging",
    "logs",    "opt",     "opted",  "pop",     "popped",  "pops",     "set",    "sets",
    "setting", "show",    "showed", "showing", "shows",   "shut",     "shuts",  "sign",
    "signed",  "signing", "signs",  "time",    "timed",   "times",    "timing", "top",
    "topped",  "topping", "tops",   "turn",    "turned",  "turns"};
constexpr std::string_view kParticles[] = {"in", "out", "up", "on", "off", "down"};

// Words that may start a label but not end it: verbs and question words among the stop words
// ("get a t-shirt", "where is my refund") and determiners that the tokenizer keeps ("every time I
// attach an image").
constexpr std::string_view kStarters[] = {"get",   "got",  "how",   "why",
                                          "where", "what", "every", "another"};

// Words that open an object or a noun phrase: a label must not end right before one ("when I
// add" of "when I add a photo").
constexpr std::string_view kObjectOpeners[] = {
    "a",   "an",   "any", "her",   "him",  "his",   "it",   "its",   "me", "my",
    "our", "some", "the", "their", "them", "these", "this", "those", "us", "your"};
// The openers above that are determiners: the noun phrase they open runs to its noun.
constexpr std::string_view kDeterminers[] = {"a",    "an",  "any",   "her",   "his",
                                             "its",  "my",  "our",   "some",  "the",
                                             "their", "these", "this", "those", "your"};

// All the words above with their flags, in an open-addressing table built at compile time: every
// word of every exemplar is looked up, and binary searches over the lists were a visible part of
// a label's cost.
struct Special {
  std::string_view word;
  std::uint16_t flags = 0;
};
constexpr std::size_t kSpecialSlots = 512;
struct SpecialTable {
  std::array<Special, 192> words{};
  std::size_t size = 0;
  std::array<std::uint8_t, kSpecialSlots> slot{};  // 1 + index into words, 0: empty
  std::size_t longest = 0;

  [[nodiscard]] constexpr std::size_t find(std::string_view w) const {
    std::size_t i = fnv1a64(w) & (kSpecialSlots - 1);
    while (slot[i] != 0 && words[slot[i] - 1u].word != w) i = (i + 1) & (kSpecialSlots - 1);
    return i;
  }
  template <std::size_t N>
  constexpr void add(const std::string_view (&list)[N], std::uint16_t flags) {
    for (const std::string_view w : list) {
      const std::size_t i = find(w);
      if (slot[i] == 0) {
        words[size] = Special{w, 0};
        slot[i] = static_cast<std::uint8_t>(++size);
        longest = std::max(longest, w.size());
      }
      words[slot[i] - 1u].flags |= flags;
    }
  }
};
constexpr SpecialTable kSpecial = [] {
  SpecialTable t;
  t.add(kFunctionWords, kFunctionWord);
  t.add(kNegations, kNegation);
  t.add(kPhrasalVerbs, kPhrasal);
  t.add(kParticles, kParticle);
  t.add(kStarters, kStarter);
  t.add(kObjectOpeners, kOpensObject);
  t.add(kDeterminers, kDeterminer);
  t.add({std::string_view("to")}, kTo);
  return t;
}();
static_assert(kSpecial.size <= kSpecial.words.size() && kSpecial.size < 255);

// The flags of a lowercase word (0 for most words).
std::uint16_t special_flags(std::string_view w) {
  if (w.size() > kSpecial.longest) return 0;
  const std::uint8_t s = kSpecial.slot[kSpecial.find(w)];
  return s == 0 ? 0 : kSpecial.words[s - 1u].flags;
}

bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }

// The code point at s[i], advancing i: ASCII inline (most text), the rest through the
// tokenizer's decoder.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  return base::decode_utf8(s, i);
}

bool is_word_char(char32_t c) {
  if (c < 0x80) return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return is_word_code_point(c);
}

bool is_apostrophe(char32_t c) { return c == '\'' || c == 0x2019 || c == 0x2018; }

// Spaces beyond ASCII's (no-break, typographic, ideographic): separate words like ' '.
bool is_wide_space(char32_t c) {
  return c == 0xA0 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Whether `c` between word characters `prev` and `next` keeps them in one word: contractions
// ("can't"), compounds ("sign-on", "iOS/Android", "AT&T") and numbers ("42.50", "1,000", "10:30").
// Anywhere else these characters end a word, and . , : end a clause.
bool joins(char32_t prev, char32_t c, char32_t next) {
  if (is_apostrophe(c) || c == '-' || c == '/' || c == '&') return true;
  return (c == '.' || c == ',' || c == ':') && is_digit(prev) && is_digit(next);
}

// Length of an upstream placeholder ("<email>", "<phone>", "<number>") at s[i], else 0.
std::size_t placeholder_length(std::string_view s, std::size_t i) {
  if (s[i] != '<') return 0;
  std::size_t k = i + 1;
  while (k < s.size() && ((s[k] >= 'a' && s[k] <= 'z') || s[k] == '_')) ++k;
  return k > i + 1 && k < s.size() && s[k] == '>' ? k + 1 - i : 0;
}

// A whitespace-delimited chunk that is a link or an address: never part of a label.
bool is_link(std::string_view chunk) {
  return chunk.starts_with("http://") || chunk.starts_with("https://") ||
         chunk.starts_with("www.") || chunk.find('@') != std::string_view::npos;
}

bool is_ascii_space(char b) {
  return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v';
}

// How well a phrase's ends sit in its clause: an end of the clause is best, a stop word next to
// it (a natural break: "...the [app drains my battery]") next; a meaningful word next to it means
// the phrase cuts a noun phrase or a verb from its object ("report [times are in...]", "[limits
// on top] ups") and costs a little.
double edge_bonus(std::uint16_t first_flags, std::uint16_t last_flags) {
  constexpr double kClauseEnd = 0.04;
  constexpr double kStopNext = 0.02;
  constexpr double kCut = -0.03;
  double bonus = 0;
  if ((first_flags & kClauseFirst) != 0) {
    bonus += kClauseEnd;
  } else {
    bonus += (first_flags & kAfterStop) != 0 ? kStopNext : kCut;
  }
  if ((last_flags & kClauseLast) != 0) {
    bonus += kClauseEnd;
  } else if ((last_flags & kBeforeStop) != 0) {
    bonus += kStopNext;
  } else if ((last_flags & kBeforeMeaningful) != 0) {
    bonus += kCut;
  }
  return bonus;
}

// 1 + ln(tf), the term-frequency weight of featurization (tabulated: a phrase repeats a term
// rarely, and the logarithm was a visible part of scoring).
double tf_weight(std::uint32_t tf) {
  static const std::array<double, 8> table = [] {
    std::array<double, 8> t{};
    for (std::size_t k = 1; k < t.size(); ++k) t[k] = 1.0 + std::log(static_cast<double>(k));
    return t;
  }();
  return tf < table.size() ? table[tf] : 1.0 + std::log(static_cast<double>(tf));
}

// A tie between equal scores goes to the shorter phrase, then the earlier text, then the earlier
// position, so that the choice never depends on anything but the inputs.
template <typename Best>
bool better(const Best& a, const Best& b) {
  if (!b.valid) return true;
  if (a.score != b.score) return a.score > b.score;
  if (a.bytes != b.bytes) return a.bytes < b.bytes;
  if (a.text != b.text) return a.text < b.text;
  return a.begin < b.begin;
}

// The phrase text[begin, begin + bytes) as a label: as written, except that a capital that is
// only there because the phrase starts a sentence ("Uploading a picture...") is lowercased; an
// acronym ("SSO", "iOS") or a capital in mid-sentence (a name) stays.
std::string readable(std::string_view text, std::size_t begin, std::size_t bytes) {
  std::string out(text.substr(begin, bytes));
  std::size_t before = begin;
  while (before > 0 && text[before - 1] == ' ') --before;
  const bool sentence_start =
      before == 0 || std::string_view(".!?:\n\r").find(text[before - 1]) != std::string::npos;
  std::size_t word_end = 1;
  while (word_end < out.size() && !is_ascii_space(out[word_end])) ++word_end;
  const bool capitalised =
      out[0] >= 'A' && out[0] <= 'Z' && word_end > 1 &&
      std::none_of(out.begin() + 1, out.begin() + static_cast<std::ptrdiff_t>(word_end),
                   [](char c) { return c >= 'A' && c <= 'Z'; });
  if (sentence_start && capitalised) out[0] = static_cast<char>(out[0] + ('a' - 'A'));
  return out;
}

}  // namespace

PhraseText PhraseLabeler::analyze(std::string_view text, const TermOf& term_of) {
  text = text.substr(0, base::utf8_prefix_length(text, kMaxTextBytes));
  text_words_.clear();
  text_terms_.clear();
  text_segment_ = 0;
  split_words(text, term_of);
  mark_clauses(text_words_);
  return PhraseText{text, text_words_, text_terms_};
}

std::string PhraseLabeler::label(std::span<const std::string_view> texts,
                                 std::span<const std::uint32_t> keywords, const TermOf& term_of,
                                 const Weigh& weigh, std::size_t* source) {
  // Each analysis is copied out: analyze() reuses its buffers for the next text.
  std::vector<std::string_view> cut;
  std::vector<PhraseWord> words;
  std::vector<std::uint32_t> terms;
  std::vector<std::pair<std::size_t, std::size_t>> ends;  // of each text's words and terms
  for (const std::string_view text : texts) {
    const PhraseText a = analyze(text, term_of);
    cut.push_back(a.text);
    words.insert(words.end(), a.words.begin(), a.words.end());
    terms.insert(terms.end(), a.terms.begin(), a.terms.end());
    ends.emplace_back(words.size(), terms.size());
  }
  std::vector<PhraseText> analysed;
  std::pair<std::size_t, std::size_t> from{0, 0};
  for (std::size_t t = 0; t < texts.size(); ++t) {
    const auto to = ends[t];
    analysed.push_back(PhraseText{
        cut[t], std::span<const PhraseWord>(words).subspan(from.first, to.first - from.first),
        std::span<const std::uint32_t>(terms).subspan(from.second, to.second - from.second)});
    from = to;
  }
  return label(analysed, keywords, weigh, source);
}

std::string PhraseLabeler::label(std::span<const PhraseText> texts,
                                 std::span<const std::uint32_t> keywords, const Weigh& weigh,
                                 std::size_t* source) {
  words_.clear();
  word_terms_.clear();
  distinct_.clear();
  if (++stamp_ == 0) {  // wrapped: old stamps could look current
    for (Slot& slot : term_slots_) slot.stamp = 0;
    stamp_ = 1;
  }
  const std::size_t n = std::min<std::size_t>(texts.size(), UINT16_MAX);
  std::size_t terms = 0;
  for (std::size_t t = 0; t < n; ++t) terms += texts[t].terms.size();
  // At most half the slots are ever taken.
  const std::size_t slots = std::bit_ceil(std::max<std::size_t>(64, 2 * terms));
  if (term_slots_.size() < slots) term_slots_.assign(slots, Slot{0, 0, 0});
  for (std::size_t t = 0; t < n; ++t) add_text(texts[t], static_cast<std::uint16_t>(t), weigh);
  for (Distinct& d : distinct_) {
    d.keyword = std::find(keywords.begin(), keywords.end(), d.t.term) != keywords.end();
  }

  // best[k]: the best candidate covering min(k, 2) of the top keywords.
  std::array<Best, 3> best{};
  for (std::size_t i = 0; i < words_.size(); ++i) {
    const Kind k = words_[i].kind;
    if (k == Kind::kContent || k == Kind::kNegation || k == Kind::kNumber ||
        (words_[i].flags & kStarter) != 0) {
      score_from(i, n, best);
    }
  }
  for (std::size_t level = best.size(); level-- > 0;) {
    if (!best[level].valid) continue;
    if (source != nullptr) *source = best[level].text;
    return readable(texts[best[level].text].text, best[level].begin, best[level].bytes);
  }
  return {};
}

// Adds one analysed text's words and terms to the call's; its segments get the text's index
// in their high bits, so that no candidate crosses from one text into the next.
void PhraseLabeler::add_text(const PhraseText& text, std::uint16_t index, const Weigh& weigh) {
  std::size_t term = 0;
  for (const PhraseWord& w : text.words) {
    const auto first = static_cast<std::uint32_t>(word_terms_.size());
    for (std::size_t k = 0; k < w.terms && term < text.terms.size(); ++k) {
      word_terms_.push_back(distinct_of(text.terms[term++], index, weigh));
    }
    words_.push_back(Word{w.begin, w.end, (std::uint32_t{index} << 16) | w.segment, first,
                          static_cast<std::uint16_t>(word_terms_.size() - first), index,
                          static_cast<Kind>(w.kind), w.flags});
  }
}

// Splits one text into words with their byte offsets and tokens; punctuation, line breaks,
// symbols, emoji, placeholders and links separate segments, which no candidate crosses.
void PhraseLabeler::split_words(std::string_view text, const TermOf& term_of) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == '\t') {
      ++i;
      continue;
    }
    if (const std::size_t len = placeholder_length(text, i); len > 0) {
      i += len;
      ++text_segment_;
      continue;
    }
    if (i == 0 || is_ascii_space(text[i - 1])) {
      std::size_t end = i;
      while (end < text.size() && !is_ascii_space(text[end])) ++end;
      if (is_link(text.substr(i, end - i))) {
        i = end;
        ++text_segment_;
        continue;
      }
    }
    std::size_t next = i;
    const char32_t c = next_code_point(text, next);
    if (is_wide_space(c)) {
      i = next;
      continue;
    }
    if (!is_word_char(c)) {  // punctuation, line breaks, symbols, emoji
      i = next;
      ++text_segment_;
      continue;
    }
    std::size_t end = next;
    char32_t prev = c;
    while (end < text.size()) {
      std::size_t after = end;
      const char32_t d = next_code_point(text, after);
      if (is_word_char(d)) {
        prev = d;
        end = after;
        continue;
      }
      std::size_t after2 = after;
      if (after2 >= text.size()) break;
      const char32_t e = next_code_point(text, after2);
      if (!is_word_char(e) || !joins(prev, d, e)) break;
      prev = e;
      end = after2;
    }
    add_word(text, i, end, term_of);
    i = end;
  }
}

// Tokenizes one word as featurization would (so stop words, contractions and numbers come out
// the same) and records its terms and its kind.
void PhraseLabeler::add_word(std::string_view text, std::size_t begin, std::size_t end,
                             const TermOf& term_of) {
  tokenize_word(text.substr(begin, end - begin));
  bool content = false;
  bool negation = false;
  bool number = false;
  for (std::size_t k = 0; k < tokens_.size(); ++k) {
    const std::string_view tok = tokens_[k];
    if (tok == "_url_" || tok == "_email_") {  // an address the link check did not catch
      ++text_segment_;
      return;
    }
    const std::uint16_t role = special_flags(tok);
    if (tok == "_num_") {
      number = true;
    } else if ((role & kNegation) != 0) {
      negation = true;
    } else if ((role & kFunctionWord) == 0) {
      content = true;
    }
  }
  Kind kind = Kind::kStop;
  if (content) {
    kind = Kind::kContent;
  } else if (negation) {
    kind = Kind::kNegation;
  } else if (number) {
    kind = Kind::kNumber;
  } else if (tokens_.size() > 0) {
    kind = Kind::kFunction;
  }
  // The word lists hold ASCII letters only.
  const std::uint16_t flags =
      lowered_.empty()
          ? 0
          : special_flags(lowered_) &
                (kPhrasal | kParticle | kStarter | kOpensObject | kDeterminer | kTo);
  for (std::size_t k = 0; k < tokens_.size(); ++k) text_terms_.push_back(term_of(tokens_[k]));
  text_words_.push_back(PhraseWord{static_cast<std::uint16_t>(begin),
                                   static_cast<std::uint16_t>(end), text_segment_, flags,
                                   static_cast<std::uint16_t>(tokens_.size()),
                                   static_cast<std::uint8_t>(kind)});
}

// The Tokenizer's tokens of one word. Most words are ASCII letters only, and for those the
// Tokenizer's result is simply the lowercased word unless it is a stop word or one letter long:
// computed here directly, since a Tokenizer call per word was most of a label's cost.
void PhraseLabeler::tokenize_word(std::string_view word) {
  lowered_.clear();
  tokens_.clear();
  for (const char b : word) {
    if (b >= 'a' && b <= 'z') {
      lowered_.push_back(b);
    } else if (b >= 'A' && b <= 'Z') {
      lowered_.push_back(static_cast<char>(b + ('a' - 'A')));
    } else {
      lowered_.clear();
      tokenizer_.tokenize(word, tokens_);
      return;
    }
  }
  if (lowered_.size() >= 2 && !is_stop_word(lowered_)) tokens_.push(lowered_);
}

// The index in distinct_ of a term, weighed once per call; counts the term's support (texts
// containing it) on its first occurrence in each text.
std::uint32_t PhraseLabeler::distinct_of(std::uint32_t term, std::uint16_t text,
                                         const Weigh& weigh) {
  Slot& slot = slot_of(term);
  if (slot.stamp != stamp_) {
    slot.stamp = stamp_;
    slot.index = static_cast<std::uint32_t>(distinct_.size());
    PhraseTerm t = weigh(term);
    t.term = term;
    distinct_.push_back(Distinct{t, 0.0f, 0, false});
  }
  Distinct& d = distinct_[slot.index];
  if (d.last_text != text + 1u) {
    d.last_text = text + 1u;
    d.support += 1.0f;
  }
  return slot.index;
}

// The slot of `key`: its own if the call has seen it, else the free slot to claim (the caller
// sets stamp, key is set here). The table is at most half full.
PhraseLabeler::Slot& PhraseLabeler::slot_of(std::uint64_t key) {
  const std::size_t mask = term_slots_.size() - 1;
  // Terms are small integers: mix them so that neighbours do not cluster.
  std::size_t i = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 40) & mask;
  while (term_slots_[i].stamp == stamp_ && term_slots_[i].key != key) i = (i + 1) & mask;
  if (term_slots_[i].stamp != stamp_) term_slots_[i].key = key;
  return term_slots_[i];
}

// Marks where each word stands in its clause (segment): readable labels tend to be whole
// clauses or to stop at stop words, and never stop right before the object or the particle of
// their last word.
void PhraseLabeler::mark_clauses(std::span<PhraseWord> words) {
  auto meaningful = [](const PhraseWord& w) {
    const auto kind = static_cast<Kind>(w.kind);
    return (kind != Kind::kStop && kind != Kind::kFunction) || (w.flags & kStarter) != 0;
  };
  bool seen = false;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const bool same = i > 0 && words[i - 1].segment == words[i].segment;
    if (!same) seen = false;
    if (!seen) words[i].flags |= kClauseFirst;
    if (same && !meaningful(words[i - 1])) words[i].flags |= kAfterStop;
    seen = seen || meaningful(words[i]);
  }
  seen = false;
  for (std::size_t i = words.size(); i-- > 0;) {
    PhraseWord& w = words[i];
    const bool same = i + 1 < words.size() && words[i + 1].segment == w.segment;
    if (!same) seen = false;
    if (!seen) w.flags |= kClauseLast;
    if (same) {
      const PhraseWord& next = words[i + 1];
      // "to" usually continues the phrase ("when I try | to save it"): not a natural break.
      if (meaningful(next)) {
        w.flags |= kBeforeMeaningful;
      } else if ((next.flags & kTo) == 0) {
        w.flags |= kBeforeStop;
      }
      // Nor inside a noun phrase that continues: "in the wrong | timezone", "my credit | card".
      const bool after_determiner = i > 0 && words[i - 1].segment == w.segment &&
                                (words[i - 1].flags & kDeterminer) != 0;
      if ((next.flags & kOpensObject) != 0 ||
          ((w.flags & kPhrasal) != 0 && (next.flags & kParticle) != 0) ||
          (after_determiner && meaningful(next))) {
        w.flags |= kCannotEnd;
      }
    }
    seen = seen || meaningful(w);
  }
}

// Scores every candidate that starts at words_[first], keeping the best per keyword coverage.
// Terms accumulate as the phrase grows, so each candidate costs one pass over its few terms.
void PhraseLabeler::score_from(std::size_t first, std::size_t texts, std::span<Best> best) const {
  constexpr double kSupportShare = 0.3;  // of the score that support can take away
  constexpr double kLengthBonus = 0.03;  // for 3-5 words: a phrase, not a keyword pair
  struct Acc {
    std::uint32_t index;  // into distinct_
    std::uint32_t tf;
  };
  std::array<Acc, 16> acc{};
  std::size_t n = 0;
  bool content = false;
  const Word& w0 = words_[first];
  for (std::size_t j = first; j < words_.size() && j - first < kMaxWords; ++j) {
    const Word& w = words_[j];
    if (w.segment != w0.segment || w.end - w0.begin > kMaxPhraseBytes) break;
    for (std::size_t k = w.first_term; k < w.first_term + w.terms; ++k) {
      const std::uint32_t index = word_terms_[k];
      std::size_t a = 0;
      while (a < n && acc[a].index != index) ++a;
      if (a == acc.size()) return;  // a word of many tokens: no longer a short phrase
      if (a == n) acc[n++] = Acc{index, 0};
      ++acc[a].tf;
    }
    content = content || w.kind == Kind::kContent;
    const std::size_t words = j - first + 1;
    const bool ends_well =
        (w.kind == Kind::kContent || w.kind == Kind::kNumber ||
         ((w.flags & kParticle) != 0 && (words_[j - 1].flags & kPhrasal) != 0)) &&
        (w.flags & (kCannotEnd | kStarter)) == 0;
    if (words < kMinWords || !content || !ends_well) continue;
    double dot = 0;
    double norm2 = 0;
    double support = 0;
    std::size_t cover = 0;
    for (std::size_t a = 0; a < n; ++a) {
      const Distinct& d = distinct_[acc[a].index];
      const double wt = tf_weight(acc[a].tf) * d.t.idf;
      dot += wt * d.t.centroid;
      norm2 += wt * wt;
      support += d.support;
      cover += static_cast<std::size_t>(d.keyword);
    }
    if (dot <= 0 || norm2 <= 0) continue;
    const double share = support / static_cast<double>(texts * n);
    Best b;
    b.score = dot / std::sqrt(norm2) * (1.0 - kSupportShare + kSupportShare * share) +
              (words >= 3 && words <= 5 ? kLengthBonus : 0.0) + edge_bonus(w0.flags, w.flags);
    b.bytes = w.end - w0.begin;
    b.text = w0.text;
    b.begin = w0.begin;
    b.valid = true;
    Best& slot = best[std::min<std::size_t>(cover, 2)];
    if (better(b, slot)) slot = b;
  }
}

}  // namespace painpoint::aggregator
