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

// What the labeler needs to know about one token (a word as the Tokenizer emits it): its term
// (hashed stem), the term's IDF as featurization weighs it, and its weight in the cluster's
// centroid divided by the centroid's norm (0 when the centroid lacks it).
struct PhraseTerm {
  std::uint32_t term = 0;
  double idf = 0;
  double centroid = 0;
};

// A non-owning reference to the caller's token -> PhraseTerm function, valid for one label()
// call: a std::function would allocate for the aggregator's capturing lambda on every summary.
class PhraseLookup {
 public:
  template <typename F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, PhraseLookup>)
      PhraseLookup(F&& f)  // NOLINT(google-explicit-constructor): passed as a lambda
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, std::string_view token) {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(token);
        }) {}
  PhraseTerm operator()(std::string_view token) const { return call_(obj_, token); }

 private:
  void* obj_;
  PhraseTerm (*call_)(void*, std::string_view);
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

  using Lookup = PhraseLookup;

  // `texts`: the exemplar texts, medoid first (earlier texts win ties). `keywords`: the
  // cluster's top keyword terms. Returns the phrase as it occurs in its text, except that a
  // sentence-initial capital ("Uploading", not "SSO" or "iOS") is lowercased; empty when no
  // candidate qualifies. Ties: higher score, then fewer bytes, earlier text, earlier position.
  // `source`, when given, receives the index of the text the phrase was taken from.
  std::string label(std::span<const std::string_view> texts,
                    std::span<const std::uint32_t> keywords, const Lookup& lookup,
                    std::size_t* source = nullptr);

 private:
  enum class Kind : std::uint8_t { kStop, kFunction, kNegation, kNumber, kContent };
  struct Word {
    std::uint32_t begin;  // byte offsets into texts[text]
    std::uint32_t end;
    std::uint32_t segment;     // words of one segment have no punctuation between them
    std::uint32_t first_term;  // word_terms_[first_term, first_term + terms): its tokens' terms
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

  // A term of this call: what the lookup said and in how many texts it occurs.
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

  void split_words(std::string_view text, std::uint16_t index, const Lookup& lookup);
  void add_word(std::string_view text, std::size_t begin, std::size_t end, std::uint16_t index,
                const Lookup& lookup);
  void tokenize_word(std::string_view word);
  std::uint32_t distinct_of(std::string_view token, std::uint16_t text, const Lookup& lookup);
  Slot& slot_of(std::vector<Slot>& slots, std::uint64_t key);
  void mark_clauses();
  void score_from(std::size_t first, std::size_t texts, std::span<Best> best) const;

  Tokenizer tokenizer_;
  Tokens tokens_;
  std::string lowered_;  // the current word, lowercased, when it is all ASCII letters
  std::vector<Word> words_;
  std::vector<std::uint32_t> word_terms_;  // per word token: index into distinct_
  std::vector<Distinct> distinct_;
  std::vector<Slot> token_slots_;  // fnv1a64(token) -> distinct_
  std::vector<Slot> term_slots_;   // term -> distinct_ (tokens with one stem share a term)
  std::uint32_t stamp_ = 0;
  std::uint32_t segment_ = 0;
};

}  // namespace painpoint::aggregator
