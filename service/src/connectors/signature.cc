#include "signature.h"

#include <google/protobuf/util/time_util.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <charconv>

#include "../api.h"
#include "../http_server.h"
#include "connectors.h"
#include "painpoint/base/hex.h"
#include "painpoint/base/time.h"

namespace painpoint::service {

namespace {

std::string hmac(const EVP_MD* digest, std::string_view key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // HMAC() with a null key pointer would fail; an empty key is a valid (if useless) HMAC key.
  static const unsigned char kEmpty = 0;
  const auto* key_bytes =
      key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  if (HMAC(digest, key_bytes, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
           &length) == nullptr) {
    return {};  // never equal to a well-formed signature
  }
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The signed timestamp as seconds since the epoch: RFC 3339 (Zendesk) or whole seconds.
std::optional<std::int64_t> parse_timestamp(std::string_view text) {
  std::int64_t seconds = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc() && ptr == text.data() + text.size()) return seconds;
  google::protobuf::Timestamp parsed;
  if (!google::protobuf::util::TimeUtil::FromString(std::string(text), &parsed)) {
    return std::nullopt;
  }
  return parsed.seconds();
}

ConnectorStatus check_timestamp(std::optional<std::string_view> header, std::string_view name,
                                std::chrono::seconds max_skew,
                                std::chrono::system_clock::time_point now) {
  if (!header) {
    return ConnectorStatus::Error(ConnectorErrc::kStaleTimestamp, "missing " + std::string(name));
  }
  const auto seconds = parse_timestamp(*header);
  if (!seconds) {
    return ConnectorStatus::Error(ConnectorErrc::kStaleTimestamp,
                                  "unreadable " + std::string(name));
  }
  const std::int64_t now_s = base::seconds_of(now);
  const std::int64_t distance = *seconds > now_s ? *seconds - now_s : now_s - *seconds;
  if (distance > max_skew.count()) {
    return ConnectorStatus::Error(ConnectorErrc::kStaleTimestamp,
                                  std::string(name) + " is more than " +
                                      std::to_string(max_skew.count()) +
                                      " s from the server's clock");
  }
  return ConnectorStatus::Ok();
}

ConnectorStatus compare(std::optional<std::string_view> sent, std::string_view expected,
                        std::string_view header) {
  if (!sent) {
    return ConnectorStatus::Error(ConnectorErrc::kBadSignature, "missing " + std::string(header));
  }
  if (!constant_time_equals(*sent, expected)) {
    return ConnectorStatus::Error(ConnectorErrc::kBadSignature,
                                  std::string(header) + " does not match the body");
  }
  return ConnectorStatus::Ok();
}

// "<prefix>=<hex>" headers: the hex part compared without regard to case.
std::optional<std::string> lowercase_header(const HttpRequest& request, std::string_view name) {
  auto value = request.header(name);
  if (!value) return std::nullopt;
  return lowercase(*value);
}

}  // namespace

std::string hmac_sha256(std::string_view key, std::string_view message) {
  return hmac(EVP_sha256(), key, message);
}

std::string hmac_sha1(std::string_view key, std::string_view message) {
  return hmac(EVP_sha1(), key, message);
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

std::string_view to_string(ConnectorErrc code) {
  switch (code) {
    case ConnectorErrc::kOk:
      return "ok";
    case ConnectorErrc::kBadSignature:
      return "bad_signature";
    case ConnectorErrc::kStaleTimestamp:
      return "stale_timestamp";
    case ConnectorErrc::kMalformed:
      return "malformed";
  }
  return "unknown";
}

ConnectorStatus verify_signature(ConnectorSystem system, const HttpRequest& request,
                                 std::string_view secret, std::chrono::seconds max_skew,
                                 std::chrono::system_clock::time_point now) {
  const std::string_view body = request.body;
  switch (system) {
    case ConnectorSystem::kZendesk: {
      constexpr std::string_view kTimestamp = "X-Zendesk-Webhook-Signature-Timestamp";
      const auto timestamp = request.header(kTimestamp);
      // The signature first: an unsigned request learns nothing about the clock check.
      const std::string expected = base64_encode(
          hmac_sha256(secret, std::string(timestamp.value_or("")) + std::string(body)));
      if (auto s = compare(request.header("X-Zendesk-Webhook-Signature"), expected,
                           "X-Zendesk-Webhook-Signature");
          !s.ok()) {
        return s;
      }
      return check_timestamp(timestamp, kTimestamp, max_skew, now);
    }
    case ConnectorSystem::kIntercom: {
      const auto sent = lowercase_header(request, "X-Hub-Signature");
      return compare(sent, "sha1=" + base::hex_encode(hmac_sha1(secret, body)), "X-Hub-Signature");
    }
    case ConnectorSystem::kJira: {
      const auto sent = lowercase_header(request, "X-Hub-Signature");
      return compare(sent, "sha256=" + base::hex_encode(hmac_sha256(secret, body)),
                     "X-Hub-Signature");
    }
    case ConnectorSystem::kGeneric: {
      constexpr std::string_view kTimestamp = "X-Painpoint-Timestamp";
      const auto timestamp = request.header(kTimestamp);
      const std::string signed_text = std::string(timestamp.value_or("")) + "." + std::string(body);
      const auto sent = lowercase_header(request, "X-Painpoint-Signature");
      if (auto s = compare(sent, "sha256=" + base::hex_encode(hmac_sha256(secret, signed_text)),
                           "X-Painpoint-Signature");
          !s.ok()) {
        return s;
      }
      return check_timestamp(timestamp, kTimestamp, max_skew, now);
    }
  }
  return ConnectorStatus::Error(ConnectorErrc::kBadSignature, "unknown system");
}

}  // namespace painpoint::service
