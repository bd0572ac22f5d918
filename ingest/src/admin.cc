// The admin client: topic creation, topic configs, metadata.
#include "painpoint/ingest/admin.h"

#include <vector>

#include "client_state.h"
#include "painpoint/ingest/kafka_handles.h"

namespace painpoint::ingest {

using detail::ClientState;
using detail::KafkaPtr;
using detail::status_from;
using detail::to_timeout_ms;

struct Admin::Impl : ClientState {
  KafkaPtr rk;
};

namespace {

// Sends one admin request (`send` gets the options and the queue for the reply) and waits for its
// result event: nullptr when none came within the timeout.
template <typename Send>
detail::EventPtr admin_request(rd_kafka_t* rk, rd_kafka_admin_op_t op,
                               std::chrono::milliseconds timeout, Send&& send) {
  char errstr[512];
  detail::AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk, op));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), to_timeout_ms(timeout), errstr,
                                            sizeof errstr);
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS) {
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), to_timeout_ms(timeout), errstr,
                                                sizeof errstr);
  }
  detail::QueuePtr queue(rd_kafka_queue_new(rk));
  send(options.get(), queue.get());
  return detail::EventPtr(rd_kafka_queue_poll(queue.get(), to_timeout_ms(timeout) + 1000));
}

}  // namespace

Admin::Admin(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Admin::Admin(Admin&&) noexcept = default;
Admin& Admin::operator=(Admin&&) noexcept = default;
Admin::~Admin() = default;

Result<Admin> Admin::create(const AdminConfig& config) {
  if (config.brokers.empty()) return Status::Error(KafkaErrc::kInvalidConfig, "no brokers");
  std::map<std::string, std::string> props{
      {"bootstrap.servers", config.brokers},
      {"client.id", config.client_id},
      // Metadata lookups must not create the topics they ask about.
      {"allow.auto.create.topics", "false"},
  };
  for (const auto& [k, v] : config.extra) props[k] = v;
  auto conf = detail::make_conf(props);
  if (!conf.ok()) return conf.status();
  auto impl = std::make_unique<Impl>();
  impl->what = "admin";
  detail::install_common_cbs(conf->get(), impl.get());
  auto rk = detail::new_client(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!rk.ok()) return rk.status();
  impl->rk = std::move(rk).value();
  return Admin(std::move(impl));
}

Status Admin::create_topics(std::span<const TopicSpec> topics, std::chrono::milliseconds timeout) {
  if (!impl_) return Status::Error(KafkaErrc::kState, "admin moved from");
  if (topics.empty()) return Status::Ok();
  char errstr[512];
  std::vector<detail::NewTopicPtr> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  for (const auto& spec : topics) {
    detail::NewTopicPtr nt(rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions,
                                                 spec.replication_factor, errstr, sizeof errstr));
    if (!nt) return Status::Error(KafkaErrc::kInvalidArgument, spec.name + ": " + errstr);
    for (const auto& [k, v] : spec.configs) {
      if (auto e = rd_kafka_NewTopic_set_config(nt.get(), k.c_str(), v.c_str()); e) {
        return status_from(e, spec.name + " config " + k);
      }
    }
    raw.push_back(nt.get());
    owned.push_back(std::move(nt));
  }
  detail::EventPtr event = admin_request(
      impl_->rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout, [&](auto* options, auto* queue) {
        rd_kafka_CreateTopics(impl_->rk.get(), raw.data(), raw.size(), options, queue);
      });
  if (!event) return Status::Error(KafkaErrc::kTimedOut, "create topics: no response");
  if (auto e = rd_kafka_event_error(event.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Error(detail::errc_from(e),
                         std::string("create topics: ") + rd_kafka_event_error_string(event.get()),
                         e);
  }
  const auto* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const auto** results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    const auto e = rd_kafka_topic_result_error(results[i]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
    const char* msg = rd_kafka_topic_result_error_string(results[i]);
    return Status::Error(detail::errc_from(e),
                         std::string("create topic ") + rd_kafka_topic_result_name(results[i]) +
                             ": " + (msg != nullptr ? msg : rd_kafka_err2str(e)),
                         e);
  }
  return Status::Ok();
}

Result<bool> Admin::has_controller(std::chrono::milliseconds timeout) {
  auto cluster = metadata(timeout);
  if (!cluster.ok()) return cluster.status();
  // The metadata response just received carries the controller id; this reads it back.
  const std::int32_t controller = rd_kafka_controllerid(impl_->rk.get(), 0);
  for (const auto& broker : cluster->brokers) {
    if (broker.id == controller) return true;
  }
  return false;
}

Result<std::map<std::string, TopicConfigs>> Admin::describe_topic_configs(
    std::span<const std::string> topics, std::chrono::milliseconds timeout) {
  if (!impl_) return Status::Error(KafkaErrc::kState, "admin moved from");
  std::map<std::string, TopicConfigs> out;
  if (topics.empty()) return out;
  std::vector<detail::ConfigResourcePtr> owned;
  std::vector<rd_kafka_ConfigResource_t*> raw;
  for (const auto& topic : topics) {
    owned.emplace_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
    raw.push_back(owned.back().get());
  }
  detail::EventPtr event = admin_request(
      impl_->rk.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout, [&](auto* options, auto* queue) {
        rd_kafka_DescribeConfigs(impl_->rk.get(), raw.data(), raw.size(), options, queue);
      });
  if (!event) return Status::Error(KafkaErrc::kTimedOut, "describe configs: no response");
  if (auto e = rd_kafka_event_error(event.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_poll(impl_->rk.get(), 0);  // serves error_cb, which learns the cause
    return detail::with_connection_problem(
        Status::Error(detail::errc_from(e),
                      std::string("describe configs: ") + rd_kafka_event_error_string(event.get()),
                      e),
        *impl_);
  }
  const auto* result = rd_kafka_event_DescribeConfigs_result(event.get());
  size_t count = 0;
  const auto** resources = rd_kafka_DescribeConfigs_result_resources(result, &count);
  for (size_t i = 0; i < count; ++i) {
    if (auto e = rd_kafka_ConfigResource_error(resources[i]); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return status_from(
          e, std::string("describe configs of ") + rd_kafka_ConfigResource_name(resources[i]));
    }
    TopicConfigs& configs = out[rd_kafka_ConfigResource_name(resources[i])];
    size_t entries = 0;
    const auto** entry = rd_kafka_ConfigResource_configs(resources[i], &entries);
    for (size_t j = 0; j < entries; ++j) {
      const char* value = rd_kafka_ConfigEntry_value(entry[j]);
      configs[rd_kafka_ConfigEntry_name(entry[j])] = value != nullptr ? value : "";
    }
  }
  return out;
}

Result<ClusterMetadata> Admin::metadata(std::chrono::milliseconds timeout,
                                        const std::string& topic) {
  if (!impl_) return Status::Error(KafkaErrc::kState, "admin moved from");
  // Without a topic (or when its handle cannot be made): every topic.
  detail::TopicPtr rkt;
  if (!topic.empty()) rkt.reset(rd_kafka_topic_new(impl_->rk.get(), topic.c_str(), nullptr));
  const rd_kafka_metadata_t* raw = nullptr;
  const auto err =
      rd_kafka_metadata(impl_->rk.get(), rkt ? 0 : 1, rkt.get(), &raw, to_timeout_ms(timeout));
  rkt.reset();
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_poll(impl_->rk.get(), 0);  // serves error_cb, which learns the cause
    return detail::with_connection_problem(status_from(err, "metadata"), *impl_);
  }
  detail::MetadataPtr md(raw);
  impl_->reachable.store(true);
  ClusterMetadata out;
  for (int i = 0; i < md->broker_cnt; ++i) {
    out.brokers.push_back({md->brokers[i].id, md->brokers[i].host, md->brokers[i].port});
  }
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    out.topics.push_back({t.topic, t.partition_cnt, status_from(t.err, t.topic)});
  }
  return out;
}

Result<std::string> Admin::cluster_id(std::chrono::milliseconds timeout) const {
  if (!impl_) return Status::Error(KafkaErrc::kState, "admin moved from");
  auto id = detail::cluster_id(impl_->rk.get(), timeout);
  if (id.ok()) return id;
  rd_kafka_poll(impl_->rk.get(), 0);  // serves error_cb, which learns the cause
  return detail::with_connection_problem(id.status(), *impl_);
}

namespace {

std::vector<TopicPartition> partitions_of(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  if (list == nullptr) return out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

std::string or_empty(const char* text) { return text != nullptr ? text : ""; }

GroupMember member_of(const rd_kafka_MemberDescription_t* member) {
  GroupMember out;
  out.member_id = or_empty(rd_kafka_MemberDescription_consumer_id(member));
  out.client_id = or_empty(rd_kafka_MemberDescription_client_id(member));
  out.group_instance_id = or_empty(rd_kafka_MemberDescription_group_instance_id(member));
  out.host = or_empty(rd_kafka_MemberDescription_host(member));
  if (const auto* assignment = rd_kafka_MemberDescription_assignment(member)) {
    out.assignment = partitions_of(rd_kafka_MemberAssignment_partitions(assignment));
  }
  return out;
}

// A broker that does not implement DescribeGroups answers with one of these.
bool is_unsupported(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
         err == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION ||
         err == RD_KAFKA_RESP_ERR_INVALID_REQUEST;
}

Status describe_error(rd_kafka_resp_err_t err, const std::string& what) {
  if (is_unsupported(err)) {
    return Status::Error(KafkaErrc::kUnsupported,
                         what + ": the broker cannot describe consumer groups (" +
                             rd_kafka_err2str(err) + ")",
                         err);
  }
  return status_from(err, what);
}

}  // namespace

Result<GroupDescription> Admin::describe_group(const std::string& group_id,
                                               std::chrono::milliseconds timeout) {
  if (!impl_) return Status::Error(KafkaErrc::kState, "admin moved from");
  const std::string what = "describe group " + group_id;
  const char* groups[] = {group_id.c_str()};
  detail::EventPtr event =
      admin_request(impl_->rk.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, timeout,
                    [&](auto* options, auto* queue) {
                      rd_kafka_DescribeConsumerGroups(impl_->rk.get(), groups, 1, options, queue);
                    });
  if (!event) return Status::Error(KafkaErrc::kTimedOut, what + ": no response");
  if (auto e = rd_kafka_event_error(event.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_poll(impl_->rk.get(), 0);  // serves error_cb, which learns the cause
    return detail::with_connection_problem(describe_error(e, what), *impl_);
  }
  const auto* result = rd_kafka_event_DescribeConsumerGroups_result(event.get());
  size_t count = 0;
  const auto** groups_out = rd_kafka_DescribeConsumerGroups_result_groups(result, &count);
  if (count != 1) return Status::Error(KafkaErrc::kOther, what + ": no description returned");
  const rd_kafka_ConsumerGroupDescription_t* group = groups_out[0];
  if (const rd_kafka_error_t* error = rd_kafka_ConsumerGroupDescription_error(group)) {
    return describe_error(rd_kafka_error_code(error), what);
  }
  GroupDescription out;
  out.group_id = group_id;
  out.state = rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(group));
  out.assignor = or_empty(rd_kafka_ConsumerGroupDescription_partition_assignor(group));
  const size_t members = rd_kafka_ConsumerGroupDescription_member_count(group);
  for (size_t i = 0; i < members; ++i) {
    out.members.push_back(member_of(rd_kafka_ConsumerGroupDescription_member(group, i)));
  }
  return out;
}

}  // namespace painpoint::ingest
