#include "state_codec.h"

#include <algorithm>
#include <string>

#include "painpoint/aggregator/text.h"
#include "painpoint/base/time.h"
#include "state_keys.h"

namespace painpoint::aggregator {

v1::AggCluster encode_cluster(const Cluster& c) {
  v1::AggCluster m;
  m.set_seq(c.seq);
  m.set_id(c.id);
  m.set_promoted(c.promoted);
  m.set_count(c.count);
  for (const auto& tw : c.centroid) {
    m.add_term(tw.term);
    m.add_weight(tw.w);
  }
  for (float x : c.dense) m.add_dense_sum(x);
  for (const auto& tw : c.indexed) {
    m.add_indexed_term(tw.term);
    m.add_indexed_weight(tw.w);
  }
  m.set_arr_at_risk_cents(c.arr);
  for (auto s : c.sources) m.add_source_count(s);
  m.set_first_seen_unix_s(base::seconds_floor(c.first_seen_us));
  m.set_last_seen_unix_s(base::seconds_floor(c.last_seen_us));
  m.set_first_seen_micros(c.first_seen_us);
  m.set_last_seen_micros(c.last_seen_us);
  m.set_day_of_last(c.day_of_last);
  for (auto d : c.daily) m.add_daily(d);
  m.set_version(c.version);
  m.set_last_event_doc(c.last_event_doc);
  m.set_merge_checked_count(c.merge_checked_count);
  return m;
}

v1::AggCluster encode_cold(const Cluster& c) {
  v1::AggCluster m;
  m.set_seq(c.seq);
  for (const auto& a : c.accounts) {
    m.add_account(a.hash);
    m.add_account_arr_cents(a.arr);
  }
  m.set_accounts_saturated(c.accounts_saturated);
  for (const auto& x : c.exemplars) {
    auto* e = m.add_exemplar();
    e->set_event_id(x.event_id.data(), x.event_id.size());
    e->set_text(x.text.data(), x.text.size());
    for (const auto& tw : x.terms) {
      e->add_term(tw.term);
      e->add_weight(tw.w);
    }
    e->set_score(x.score);
  }
  return m;
}

void decode_cold(const v1::AggCluster& m, Cluster& c) {
  for (int i = 0; i < m.account_size() && i < m.account_arr_cents_size(); ++i) {
    c.accounts.push_back(Account{m.account(i), m.account_arr_cents(i)});
  }
  c.accounts_saturated = m.accounts_saturated();
  for (const auto& e : m.exemplar()) {
    Exemplar x;
    x.event_id.assign(e.event_id().data(), e.event_id().size());
    x.text.assign(e.text().data(), e.text().size());
    for (int i = 0; i < e.term_size() && i < e.weight_size(); ++i) {
      x.terms.push_back(TermWeight{e.term(i), e.weight(i)});
    }
    x.score = e.score();
    c.exemplars.push_back(std::move(x));
  }
}

v1::AggSample encode_sample(const Cluster& c) {
  v1::AggSample m;
  m.set_seq(c.seq);
  for (const auto& x : c.sample) {
    auto* e = m.add_member();
    e->set_event_id(x.event_id.data(), x.event_id.size());
    e->set_text(x.text.data(), x.text.size());
    e->set_source(x.source);
    e->set_occurred_micros(x.occurred_us);
    e->set_vector(x.vector.data(), x.vector.size());
  }
  return m;
}

void decode_sample(const v1::AggSample& m, Cluster& c) {
  c.sample.clear();
  c.sample.reserve(static_cast<std::size_t>(m.member_size()));
  for (const auto& e : m.member()) {
    Member x;
    x.hash = fnv1a64(e.event_id());
    x.event_id.assign(e.event_id().data(), e.event_id().size());
    x.text.assign(e.text().data(), e.text().size());
    x.source = e.source();
    x.occurred_us = e.occurred_micros();
    x.vector.assign(e.vector().data(), e.vector().size());
    c.sample.push_back(std::move(x));
  }
}

std::unique_ptr<Cluster> decode_cluster(const v1::AggCluster& m) {
  auto c = std::make_unique<Cluster>();
  c->seq = m.seq();
  c->id = m.id();
  c->promoted = m.promoted();
  c->count = m.count();
  for (int i = 0; i < m.term_size() && i < m.weight_size(); ++i) {
    c->centroid.push_back(TermWeight{m.term(i), m.weight(i)});
  }
  c->norm2 = norm2_of(c->centroid);
  c->dense.assign(m.dense_sum().begin(), m.dense_sum().end());
  c->dense_norm = dense_norm_of(c->dense);
  for (int i = 0; i < m.indexed_term_size() && i < m.indexed_weight_size(); ++i) {
    c->indexed.push_back(TermWeight{m.indexed_term(i), m.indexed_weight(i)});
  }
  c->arr = m.arr_at_risk_cents();
  for (int i = 0; i < m.source_count_size() && i < 4; ++i) {
    c->sources[static_cast<std::size_t>(i)] = m.source_count(i);
  }
  // State written before the microsecond fields existed has whole seconds only.
  c->first_seen_us = m.has_first_seen_micros() ? m.first_seen_micros()
                                               : m.first_seen_unix_s() * base::kMicrosPerSecond;
  c->last_seen_us = m.has_last_seen_micros() ? m.last_seen_micros()
                                             : m.last_seen_unix_s() * base::kMicrosPerSecond;
  c->day_of_last = m.day_of_last();
  c->daily.assign(m.daily().begin(), m.daily().end());
  c->version = m.version();
  c->last_event_doc = m.last_event_doc();
  c->merge_checked_count = m.merge_checked_count();
  return c;
}

v1::AggProductState encode_meta(const Product& p) {
  v1::AggProductState m;
  m.set_product_id(p.id);
  m.set_doc_count(p.doc_count);
  m.set_token_count(p.token_count);
  m.set_next_seq(p.next_seq);
  m.set_events_since_maintenance(p.since_maintenance);
  for (double x : p.dense_mean_sum) m.add_dense_mean_sum(x);
  m.set_latest_unix_s(p.latest);
  m.set_move_cursor(p.move_cursor);
  return m;
}

void decode_meta(const v1::AggProductState& m, std::uint32_t dims, Product& p) {
  p.doc_count = m.doc_count();
  p.token_count = m.token_count();
  p.next_seq = m.next_seq();
  p.since_maintenance = m.events_since_maintenance();
  p.latest = m.latest_unix_s();
  p.move_cursor = m.move_cursor();
  if (m.dense_mean_sum_size() == static_cast<int>(dims)) {
    p.dense_mean_sum.assign(m.dense_mean_sum().begin(), m.dense_mean_sum().end());
  }
}

v1::AggDfPage encode_page(Product& p, std::uint32_t page) {
  v1::AggDfPage m;
  auto& keys = p.page_buckets[page];
  std::sort(keys.begin(), keys.end());
  for (std::uint32_t b : keys) {
    const Term& e = *counted_term(p, b);
    m.add_bucket(b);
    m.add_df(e.df);
    m.add_word(std::string(word_of(p, e)));
  }
  return m;
}

void decode_page(const v1::AggDfPage& m, Product& p) {
  for (int i = 0; i < m.bucket_size() && i < m.df_size() && i < m.word_size(); ++i) {
    Term& t = *p.terms.try_emplace(m.bucket(i)).first;
    t.df = m.df(i);
    t.counted = true;
    t.word = Term::kNone;
    if (!m.word(i).empty()) {
      t.word = static_cast<std::uint32_t>(p.words.size());
      p.words.push_back(m.word(i));
    }
    p.page_buckets[m.bucket(i) >> kPageBits].push_back(m.bucket(i));
  }
}

v1::AggCuration encode_curation(const Curation& c) {
  v1::AggCuration m;
  for (const auto& [id, label] : c.labels) {
    auto* l = m.add_label();
    l->set_id(id);
    l->set_label(label);
  }
  for (const auto& [a, b] : c.apart) {
    auto* x = m.add_apart();
    x->set_a(a);
    x->set_b(b);
  }
  for (const auto& [from, into] : c.merges) {
    auto* x = m.add_merge();
    x->set_from(from);
    x->set_into(into);
  }
  return m;
}

void decode_curation(const v1::AggCuration& m, Curation& c) {
  for (const auto& l : m.label()) c.labels[l.id()] = l.label();
  for (const auto& a : m.apart()) c.apart.insert(Curation::pair_of(a.a(), a.b()));
  for (const auto& x : m.merge()) c.merges.emplace_back(x.from(), x.into());
}

}  // namespace painpoint::aggregator
