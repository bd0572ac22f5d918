// The vendors' payloads mapped to FeedbackEvents. Shapes follow the vendors' documentation:
// Zendesk event webhooks (ticket created, comment added), Intercom webhook notifications
// (conversation.user.created / conversation.user.replied), Jira webhooks (jira:issue_created,
// comment_created). docs/connectors.md lists which field becomes which.

#include <google/protobuf/util/time_util.h>

#include "connectors.h"
#include "json_value.h"

namespace painpoint::service {

namespace {

using json::at_pointer;
using json::member;
using json::scalar_text;
using json::Value;

ConnectorStatus malformed(std::string message) {
  return ConnectorStatus::Error(ConnectorErrc::kMalformed, std::move(message));
}

std::string text_or_empty(const Value* value) {
  return value != nullptr && value->kind_case() == Value::kStringValue ? value->string_value()
                                                                       : std::string();
}

void set_seconds(v1::FeedbackEvent* event, std::int64_t seconds, std::int32_t nanos = 0) {
  event->mutable_occurred_at()->set_seconds(seconds);
  event->mutable_occurred_at()->set_nanos(nanos);
}

bool set_rfc3339(v1::FeedbackEvent* event, const std::string& text) {
  return google::protobuf::util::TimeUtil::FromString(text, event->mutable_occurred_at());
}

// Intercom bodies are HTML: tags become spaces (block boundaries stay word boundaries) and the
// common entities their characters; validation then collapses whitespace.
std::string html_to_text(std::string_view html) {
  static constexpr std::pair<std::string_view, std::string_view> kEntities[] = {
      {"&amp;", "&"}, {"&lt;", "<"},   {"&gt;", ">"},  {"&quot;", "\""},
      {"&#39;", "'"}, {"&apos;", "'"}, {"&nbsp;", " "}};
  std::string out;
  out.reserve(html.size());
  for (std::size_t i = 0; i < html.size();) {
    if (html[i] == '<') {
      const auto close = html.find('>', i);
      if (close == std::string_view::npos) break;
      out.push_back(' ');
      i = close + 1;
      continue;
    }
    bool replaced = false;
    if (html[i] == '&') {
      for (const auto& [entity, text] : kEntities) {
        if (html.substr(i, entity.size()) == entity) {
          out += text;
          i += entity.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(html[i++]);
  }
  const auto first = out.find_first_not_of(' ');
  const auto last = out.find_last_not_of(' ');
  return first == std::string::npos ? std::string() : out.substr(first, last - first + 1);
}

void add_product_key(MappedPayload* out, std::string selector, const Value* value) {
  if (auto text = scalar_text(value); text && !text->empty()) {
    out->product_keys.emplace_back(std::move(selector), std::move(*text));
  }
}

void add_tag_keys(MappedPayload* out, const Value* list, std::string_view name_field) {
  if (list == nullptr || !list->has_list_value()) return;
  for (const Value& tag : list->list_value().values()) {
    add_product_key(out, "tag", name_field.empty() ? &tag : member(&tag, name_field));
  }
}

// ------------------------------------------------------------------------------------ zendesk

ConnectorStatus map_zendesk(const Value& root, const ConnectorConfig& config, MappedPayload* out) {
  const std::string type = text_or_empty(member(&root, "type"));
  const bool created = type == "zen:event-type:ticket.created";
  const bool commented = type == "zen:event-type:ticket.comment_added";
  if (!created && !commented) {
    out->ignored = "event type '" + type + "' carries no feedback";
    return ConnectorStatus::Ok();
  }
  const Value* detail = member(&root, "detail");
  const auto ticket_id = scalar_text(member(detail, "id"));
  if (!ticket_id || ticket_id->empty()) return malformed("detail.id (the ticket id) is missing");
  v1::FeedbackEvent& event = out->event;
  if (created) {
    std::string text = text_or_empty(member(detail, "description"));
    if (text.empty()) text = text_or_empty(member(detail, "subject"));
    if (text.empty()) return malformed("the ticket has neither description nor subject");
    event.set_event_id("zendesk:ticket:" + *ticket_id);
    event.set_text(std::move(text));
  } else {
    const Value* comment = at_pointer(&root, "/event/comment");
    const auto comment_id = scalar_text(member(comment, "id"));
    const std::string body = text_or_empty(member(comment, "body"));
    if (!comment_id || body.empty()) return malformed("event.comment.id or .body is missing");
    if (auto staff = member(member(comment, "author"), "is_staff");
        staff != nullptr && staff->has_bool_value() && staff->bool_value()) {
      out->ignored = "a comment by an agent";
      return ConnectorStatus::Ok();
    }
    event.set_event_id("zendesk:comment:" + *comment_id);
    event.set_text(body);
  }
  if (auto time = text_or_empty(member(&root, "time"));
      !time.empty() && !set_rfc3339(&event, time)) {
    return malformed("time is not an RFC 3339 timestamp");
  }
  event.set_account_id(scalar_text(member(detail, "organization_id")).value_or(""));
  event.set_channel(text_or_empty(at_pointer(detail, "/via/channel")));
  if (!config.url_base.empty())
    event.set_external_url(config.url_base + "/agent/tickets/" + *ticket_id);
  (*event.mutable_attributes())["zendesk_ticket_id"] = *ticket_id;
  add_tag_keys(out, member(detail, "tags"), "");
  add_product_key(out, "form", member(detail, "form_id"));
  add_product_key(out, "group", member(detail, "group_id"));
  add_product_key(out, "brand", member(detail, "brand_id"));
  return ConnectorStatus::Ok();
}

// ----------------------------------------------------------------------------------- intercom

bool is_customer_author(const Value* part) {
  const std::string type = text_or_empty(at_pointer(part, "/author/type"));
  return type == "user" || type == "lead" || type == "contact";
}

ConnectorStatus map_intercom(const Value& root, const ConnectorConfig& config, MappedPayload* out) {
  const std::string topic = text_or_empty(member(&root, "topic"));
  const bool created = topic == "conversation.user.created";
  const bool replied = topic == "conversation.user.replied";
  if (!created && !replied) {
    out->ignored = "topic '" + topic + "' carries no feedback";
    return ConnectorStatus::Ok();
  }
  const Value* conversation = at_pointer(&root, "/data/item");
  const auto conversation_id = scalar_text(member(conversation, "id"));
  if (!conversation_id || conversation_id->empty()) return malformed("data.item.id is missing");
  v1::FeedbackEvent& event = out->event;
  const Value* part = nullptr;
  if (created) {
    part = member(conversation, "source");
    event.set_event_id("intercom:conversation:" + *conversation_id);
    if (auto seconds = json::integer(member(conversation, "created_at")))
      set_seconds(&event, *seconds);
  } else {
    // The newest part written by the customer: the reply this notification is about.
    const Value* parts = at_pointer(conversation, "/conversation_parts/conversation_parts");
    if (parts != nullptr && parts->has_list_value()) {
      for (const Value& candidate : parts->list_value().values()) {
        if (is_customer_author(&candidate)) part = &candidate;
      }
    }
    const auto part_id = scalar_text(member(part, "id"));
    if (!part_id) return malformed("no conversation part by the customer");
    event.set_event_id("intercom:part:" + *part_id);
    if (auto seconds = json::integer(member(part, "created_at"))) set_seconds(&event, *seconds);
  }
  std::string text = html_to_text(text_or_empty(member(part, "body")));
  if (text.empty() && created) text = html_to_text(text_or_empty(member(part, "subject")));
  if (text.empty()) return malformed("the message body is empty or missing");
  event.set_text(std::move(text));
  const Value* contact = at_pointer(conversation, "/contacts/contacts/0");
  std::string account = text_or_empty(member(contact, "external_id"));
  if (account.empty()) account = scalar_text(member(contact, "id")).value_or("");
  event.set_account_id(std::move(account));
  event.set_channel("chat");
  if (!config.url_base.empty()) {
    event.set_external_url(config.url_base + "/conversation/" + *conversation_id);
  } else if (auto app = text_or_empty(member(&root, "app_id")); !app.empty()) {
    event.set_external_url("https://app.intercom.com/a/apps/" + app + "/conversations/" +
                           *conversation_id);
  }
  (*event.mutable_attributes())["intercom_conversation_id"] = *conversation_id;
  add_tag_keys(out, at_pointer(conversation, "/tags/tags"), "name");
  add_product_key(out, "team", member(conversation, "team_assignee_id"));
  return ConnectorStatus::Ok();
}

// --------------------------------------------------------------------------------------- jira

// https://site.atlassian.net/rest/api/2/issue/10001 -> https://site.atlassian.net
std::string site_of(std::string_view self) {
  const auto rest = self.find("/rest/api/");
  return rest == std::string_view::npos ? std::string() : std::string(self.substr(0, rest));
}

ConnectorStatus map_jira(const Value& root, const ConnectorConfig& config, MappedPayload* out) {
  const std::string type = text_or_empty(member(&root, "webhookEvent"));
  const bool created = type == "jira:issue_created";
  const bool commented = type == "comment_created";
  if (!created && !commented) {
    out->ignored = "webhook event '" + type + "' carries no feedback";
    return ConnectorStatus::Ok();
  }
  const Value* issue = member(&root, "issue");
  const Value* fields = member(issue, "fields");
  const auto issue_id = scalar_text(member(issue, "id"));
  const std::string key = text_or_empty(member(issue, "key"));
  if (!issue_id || key.empty()) return malformed("issue.id or issue.key is missing");
  v1::FeedbackEvent& event = out->event;
  if (created) {
    std::string text = text_or_empty(member(fields, "description"));
    if (text.empty()) text = text_or_empty(member(fields, "summary"));
    if (text.empty()) return malformed("the issue has neither description nor summary");
    event.set_event_id("jira:issue:" + *issue_id);
    event.set_text(std::move(text));
    event.set_account_id(text_or_empty(at_pointer(fields, "/reporter/accountId")));
  } else {
    const Value* comment = member(&root, "comment");
    const auto comment_id = scalar_text(member(comment, "id"));
    const std::string body = text_or_empty(member(comment, "body"));
    if (!comment_id || body.empty()) return malformed("comment.id or comment.body is missing");
    event.set_event_id("jira:comment:" + *comment_id);
    event.set_text(body);
    event.set_account_id(text_or_empty(at_pointer(comment, "/author/accountId")));
  }
  if (auto millis = json::integer(member(&root, "timestamp")); millis && *millis >= 0) {
    set_seconds(&event, *millis / 1000, static_cast<std::int32_t>((*millis % 1000) * 1'000'000));
  }
  event.set_channel("jira");
  const std::string site =
      config.url_base.empty() ? site_of(text_or_empty(member(issue, "self"))) : config.url_base;
  if (!site.empty()) event.set_external_url(site + "/browse/" + key);
  (*event.mutable_attributes())["jira_issue_key"] = key;
  add_tag_keys(out, member(fields, "labels"), "");
  add_product_key(out, "project", at_pointer(fields, "/project/key"));
  return ConnectorStatus::Ok();
}

// ------------------------------------------------------------------------------------ generic

ConnectorStatus map_generic(const Value& root, const ConnectorConfig& config, MappedPayload* out) {
  auto field = [&](std::string_view name) -> const Value* {
    auto pointer = config.pointers.find(name);
    return pointer == config.pointers.end() ? nullptr : at_pointer(&root, pointer->second);
  };
  const auto id = scalar_text(field("id"));
  if (!id || id->empty()) return malformed("no id at " + config.pointers.at("id"));
  const std::string text = text_or_empty(field("text"));
  if (text.empty()) return malformed("no text at " + config.pointers.at("text"));
  v1::FeedbackEvent& event = out->event;
  event.set_event_id("generic:" + *id);
  event.set_text(text);
  event.set_product_id(scalar_text(field("product")).value_or(""));
  event.set_account_id(scalar_text(field("account")).value_or(""));
  event.set_external_url(text_or_empty(field("url")));
  if (const Value* arr = field("arr")) {
    auto cents = json::integer(arr);
    if (!cents || *cents < 0) return malformed("arr is not a whole number of cents");
    event.set_account_arr_cents(*cents);
  }
  if (const Value* time = field("time")) {
    if (auto seconds = json::integer(time)) {
      set_seconds(&event, *seconds);
    } else if (!set_rfc3339(&event, text_or_empty(time))) {
      return malformed("time is neither RFC 3339 nor seconds since the epoch");
    }
  }
  return ConnectorStatus::Ok();
}

}  // namespace

ConnectorStatus map_payload(ConnectorSystem system, std::string_view body,
                            const ConnectorConfig& config, MappedPayload* out) {
  Value root;
  if (auto error = json::parse(body, &root)) return malformed("not JSON: " + *error);
  if (!root.has_struct_value()) return malformed("the body is not a JSON object");
  ConnectorStatus status;
  switch (system) {
    case ConnectorSystem::kZendesk:
      status = map_zendesk(root, config, out);
      break;
    case ConnectorSystem::kIntercom:
      status = map_intercom(root, config, out);
      break;
    case ConnectorSystem::kJira:
      status = map_jira(root, config, out);
      break;
    case ConnectorSystem::kGeneric:
      status = map_generic(root, config, out);
      break;
  }
  if (status.ok() && out->ignored.empty()) {
    out->event.set_source(v1::SOURCE_SUPPORT);
    (*out->event.mutable_attributes())["connector"] = std::string(system_name(system));
  }
  return status;
}

void resolve_product_and_arr(const EnabledConnector& connector, const Connectors& connectors,
                             MappedPayload* mapped) {
  v1::FeedbackEvent& event = mapped->event;
  for (const auto& [selector, value] : mapped->product_keys) {
    auto match = connector.config.product_by.find(selector + "." + value);
    if (match != connector.config.product_by.end()) {
      event.set_product_id(match->second);
      break;
    }
  }
  if (event.product_id().empty()) event.set_product_id(connector.config.default_product);
  if (event.account_arr_cents() == 0 && !event.account_id().empty()) {
    auto arr = connectors.arr_by_account.find(event.account_id());
    if (arr != connectors.arr_by_account.end()) event.set_account_arr_cents(arr->second);
  }
}

}  // namespace painpoint::service
