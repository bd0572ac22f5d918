#include "painpoint/changelog/changelog.h"
#include "kafka_io.h"

namespace painpoint::changelog {

Result<ingest::TopicCheck> ensure_changelog_topic(ingest::Admin& admin, const std::string& topic,
                                                  int input_partitions,
                                                  std::chrono::milliseconds timeout) {
  if (input_partitions <= 0) {
    return Status::Error(ChangelogErrc::kInvalidArgument, "input partitions must be positive");
  }
  for (auto spec : ingest::painpoint_topics(input_partitions, -1)) {
    if (spec.name != ingest::kTopicChangelog) continue;
    spec.name = topic;
    const std::vector<ingest::TopicSpec> specs = {spec};
    auto checks = ingest::ensure_topics(admin, specs, timeout);
    if (!checks.ok()) return detail::from_kafka(checks.status());
    return checks->front();
  }
  return Status::Error(ChangelogErrc::kState, "no changelog topic among Painpoint's topics");
}

}  // namespace painpoint::changelog
