#include "client_state.h"

#include <gtest/gtest.h>

#include <string>

namespace painpoint::ingest::detail {
namespace {

// librdkafka 2.12's FAIL lines (info level, no error callback) for a connection the broker
// closed: a TLS client on a plaintext listener, a plaintext client on a TLS listener, and an idle
// connection the broker reaped.
constexpr const char* kClosedDuringTls =
    "ssl://127.0.0.1:43639/bootstrap: Disconnected: during SSL connection handshake (after 1ms in "
    "state SSL_HANDSHAKE)";
constexpr const char* kClosedDuringApiVersion =
    "127.0.0.1:9093/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN "
    "(after 2ms in state APIVERSION_QUERY)";
constexpr const char* kClosedWhileUp =
    "127.0.0.1:9092/1: Disconnected: connection closed by peer: POLLHUP (after 600012ms in state "
    "UP)";

TEST(ClientState, ClosedDuringTheTlsHandshakeIsTheConnectionProblem) {
  ClientState state;
  state.on_log("FAIL", kClosedDuringTls);
  EXPECT_EQ(state.connection_problem(), kClosedDuringTls);
}

TEST(ClientState, ClosedBeforeApiVersionGetsTheSecurityProtocolHint) {
  ClientState state;
  state.on_log("FAIL", kClosedDuringApiVersion);
  const std::string problem = state.connection_problem();
  EXPECT_EQ(problem.rfind(kClosedDuringApiVersion, 0), 0u) << problem;
  EXPECT_NE(problem.find("kafka.security.protocol"), std::string::npos) << problem;
}

TEST(ClientState, OtherClosesAndReachableBrokersNoteNothing) {
  ClientState state;
  state.on_log("FAIL", kClosedWhileUp);
  state.on_log("CONNECT", kClosedDuringTls);
  EXPECT_EQ(state.connection_problem(), "");
  state.reachable.store(true);
  state.on_log("FAIL", kClosedDuringTls);
  EXPECT_EQ(state.connection_problem(), "");
}

}  // namespace
}  // namespace painpoint::ingest::detail
