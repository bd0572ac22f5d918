#include "painpoint/ingest/topics.h"

namespace painpoint::ingest {

std::vector<std::string> input_topics() {
  return {std::string(kTopicSupport), std::string(kTopicSales), std::string(kTopicCustomer)};
}

std::vector<TopicSpec> painpoint_topics(int partitions, int replication_factor) {
  std::vector<TopicSpec> specs;
  for (auto name : {kTopicSupport, kTopicSales, kTopicCustomer, kTopicByProduct, kTopicDeadletter,
                    kTopicSummaries}) {
    TopicSpec spec;
    spec.name = std::string(name);
    spec.partitions = partitions;
    spec.replication_factor = replication_factor;
    // Subscribers only need the latest summary per pain point id.
    if (name == kTopicSummaries) spec.configs["cleanup.policy"] = "compact";
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace painpoint::ingest
