#pragma once

// Readable labels: a short phrase taken verbatim from a pain point's exemplar texts, chosen by
// closeness to the cluster's centroid (KeyBERT-style, with the aggregator's own TF-IDF space in
// place of sentence embeddings). Private to the aggregator module.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "painpoint/aggregator/text.h"

namespace painpoint::aggregator {

// What the labeler needs to know about one term (hashed stem, as featurization makes it): its
// IDF as featurization weighs it, and its weight in the cluster's centroid divided by the
// centroid's norm (0 when the centroid lacks it).
struct PhraseTerm {
  std::uint32_t term = 0;
  double idf = 0;
  double centroid = 0;
};

// One word of an analysed text (PhraseLabeler::analyze).
struct PhraseWord {
  std::uint16_t begin = 0;  // byte offsets into the text
  std::uint16_t end = 0;
  std::uint16_t segment = 0;  // words of one segment have no punctuation between them
  std::uint16_t flags = 0;    // bits: see phrase_label.cc
  std::uint16_t terms = 0;    // its tokens' terms: the next `terms` entries of the text's terms
  std::uint8_t kind = 0;
};

// A text with its analysis, as label() reads it.
struct PhraseText {
  std::string_view text;
  std::span<const PhraseWord> words;
  std::span<const std::uint32_t> terms;
};

// A non-owning reference to a caller's function, valid for one call: a std::function would
// allocate for the aggregator's capturing lambdas on every summary.
template <typename Result, typename Arg>
class FunctionRef {
 public:
  template <typename F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef>)
      FunctionRef(F&& f)  // NOLINT(google-explicit-constructor): passed as a lambda
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, Arg arg) -> Result {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(arg);
        }) {}
  Result operator()(Arg arg) const { return call_(obj_, arg); }

 private:
  void* obj_;
  Result (*call_)(void*, Arg);
};

// Candidates are runs of 2-6 words of one text, at most kMaxPhraseBytes bytes, that cross no
// sentence or clause punctuation, line break, emoji, placeholder ("<email>") or link and hold at
// least one content word. They start on a word that carries meaning, a negation ("cannot sign
// in"), "get" or a question word ("where is my refund"), and end on a content word or a particle
// after its verb ("log in"), never right before that word's object ("when I add | a photo").
// Each is scored as a short document of the cluster: cosine of its TF-IDF vector with the
// centroid, weighted by how many of the texts share its terms, plus small bonuses for 3-5 words
// and for ends that are clause ends or sit next to stop words (minus a little for cutting a
// noun phrase). The phrase must cover as many of the top keywords as any candidate does (up to
// two). No alternatives are returned, so there is no diversity (MMR) step.
//
// A pure function of its arguments: the buffers it keeps are scratch space only.
class PhraseLabeler {
 public:
  static constexpr std::size_t kMinWords = 2;
  static constexpr std::size_t kMaxWords = 6;
  static constexpr std::size_t kMaxPhraseBytes = 60;

  // Longer texts are labelled from their first kMaxTextBytes bytes (PhraseWord's offsets are
  // 16-bit; exemplars are far shorter).
  static constexpr std::size_t kMaxTextBytes = 60'000;

  using TermOf = FunctionRef<std::uint32_t, std::string_view>;  // a token's term
  using Weigh = FunctionRef<PhraseTerm, std::uint32_t>;         // a term's weights

  // Splits `text` into words, with each word's terms (`term_of` of its tokens, which are the
  // featurization tokenizer's) and its place in its clause. The result depends on nothing but
  // the text and term_of, so a caller may keep a copy and pass it to label() for as long as
  // both stay the same. The view is valid until the next call.
  PhraseText analyze(std::string_view text, const TermOf& term_of);

  // `texts`: the exemplar texts with their analyses, medoid first (earlier texts win ties).
  // `keywords`: the cluster's top keyword terms. Returns the phrase as it occurs in its text,
  // except that a sentence-initial capital ("Uploading", not "SSO" or "iOS") is lowercased;
  // empty when no candidate qualifies. Ties: higher score, then fewer bytes, earlier text,
  // earlier position. `source`, when given, receives the index of the text the phrase was
  // taken from.
  std::string label(std::span<const PhraseText> texts, std::span<const std::uint32_t> keywords,
                    const Weigh& weigh, std::size_t* source = nullptr);

  // The same for texts not analysed yet: analyses each first.
  std::string label(std::span<const std::string_view> texts,
                    std::span<const std::uint32_t> keywords, const TermOf& term_of,
                    const Weigh& weigh, std::size_t* source = nullptr);

 private:
  enum class Kind : std::uint8_t { kStop, kFunction, kNegation, kNumber, kContent };
  struct Word {
    std::uint32_t begin;  // byte offsets into texts[text]
    std::uint32_t end;
    std::uint32_t segment;     // words of one segment have no punctuation between them
    std::uint32_t first_term;  // word_terms_[first_term, first_term + terms): its terms
    std::uint16_t terms;
    std::uint16_t text;
    Kind kind;
    std::uint16_t flags;  // bits: see phrase_label.cc
  };
  struct Best {
    double score = 0;
    std::uint32_t bytes = 0;
    std::uint16_t text = 0;
    std::uint32_t begin = 0;
    bool valid = false;
  };

  // A term of this call: its weights and in how many texts it occurs.
  struct Distinct {
    PhraseTerm t;
    float support = 0;
    std::uint32_t last_text = 0;  // 1 + the last text that counted it, 0: none yet
    bool keyword = false;         // one of the top keywords
  };
  // Open-addressing slots, valid when their stamp is the call's: nothing to clear per call.
  struct Slot {
    std::uint64_t key;
    std::uint32_t stamp;
    std::uint32_t index;  // into distinct_
  };

  void split_words(std::string_view text, const TermOf& term_of);
  void add_word(std::string_view text, std::size_t begin, std::size_t end, const TermOf& term_of);
  void tokenize_word(std::string_view word);
  static void mark_clauses(std::span<PhraseWord> words);
  void add_text(const PhraseText& text, std::uint16_t index, const Weigh& weigh);
  std::uint32_t distinct_of(std::uint32_t term, std::uint16_t text, const Weigh& weigh);
  Slot& slot_of(std::uint64_t key);
  void score_from(std::size_t first, std::size_t texts, std::span<Best> best) const;

  // analyze()'s output and scratch.
  Tokenizer tokenizer_;
  Tokens tokens_;
  std::string lowered_;  // the current word, lowercased, when it is all ASCII letters
  std::vector<PhraseWord> text_words_;
  std::vector<std::uint32_t> text_terms_;
  std::uint16_t text_segment_ = 0;
  // label()'s scratch.
  std::vector<Word> words_;
  std::vector<std::uint32_t> word_terms_;  // per word token: index into distinct_
  std::vector<Distinct> distinct_;
  std::vector<Slot> term_slots_;  // term -> distinct_ (tokens with one stem share a term)
  std::uint32_t stamp_ = 0;
};

}  // namespace painpoint::aggregator
