#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "http_internal.h"

namespace painpoint::service {

void HttpServer::Impl::add_session(http_detail::Session* raw,
                                   std::weak_ptr<http_detail::Session> session) {
  std::lock_guard lock(mu_);
  sessions_.emplace(raw, std::move(session));
}

void HttpServer::Impl::remove_session(http_detail::Session* raw, bool rejected) {
  (rejected ? rejecting_ : serving_).fetch_sub(1);
  std::lock_guard lock(mu_);
  sessions_.erase(raw);
  if (sessions_.empty()) sessions_done_.notify_all();
}

void HttpServer::Impl::start() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (started_ || stopped_) throw std::logic_error("HttpServer::start() called twice");
  beast::error_code ec;
  auto address = net::ip::make_address(config_.address, ec);
  if (ec) throw std::runtime_error("http: invalid listen address '" + config_.address + "'");
  tcp::endpoint endpoint(address, config_.port);
  const std::string where = config_.address + ":" + std::to_string(config_.port);
  auto check = [&](const char* what) {
    if (ec)
      throw std::runtime_error("http: cannot " + std::string(what) + " " + where + ": " +
                               ec.message());
  };
  acceptor_.open(endpoint.protocol(), ec);
  check("open");
  // Lets a restarted service rebind while old connections sit in TIME_WAIT.
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  check("configure");
  acceptor_.bind(endpoint, ec);
  check("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  check("listen");
  port_ = acceptor_.local_endpoint().port();

  do_accept();
  started_ = true;
  const int n = std::max(1, config_.io_threads);
  threads_.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "pp-http");
      run_io_thread();
    });
  spdlog::info("http: listening on {}:{} ({} io threads)", config_.address, port_, n);
}

void HttpServer::Impl::run_io_thread() {
  for (;;) {
    try {
      ioc_.run();
      return;
    } catch (const std::exception& e) {
      // Should not happen (handlers catch), but an escaped exception must not kill the process.
      spdlog::error("http: io thread caught: {}", e.what());
    }
  }
}

void HttpServer::Impl::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Impl::on_accept, this));
}

void HttpServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (stopping_.load() || ec == net::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // EMFILE and friends: back off instead of spinning on the same error.
    spdlog::warn("http: accept failed: {}", ec.message());
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && !stopping_.load()) do_accept();
    });
    return;
  }
  const bool reject = serving_.load() >= config_.max_connections;
  // Turning clients away costs a little too; past this many, drop them without an answer.
  const std::size_t max_rejecting = std::max<std::size_t>(16, config_.max_connections);
  if (reject && rejecting_.load() >= max_rejecting) {
    beast::error_code ignored;
    socket.close(ignored);
  } else {
    (reject ? rejecting_ : serving_).fetch_add(1);
    http_detail::start_session(std::move(socket), *this, reject);
  }
  do_accept();
}

void HttpServer::Impl::stop(std::chrono::milliseconds grace) {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (!started_) return;
  const auto deadline = std::chrono::steady_clock::now() + grace;

  // Sessions check this before reading the next request, so none starts after the sweep below.
  stopping_.store(true);
  net::post(accept_strand_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  std::vector<std::shared_ptr<http_detail::Session>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& entry : sessions_) {
      if (auto session = entry.second.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) http_detail::request_stop(session);
  live.clear();
  {
    std::unique_lock lock(mu_);
    if (!sessions_done_.wait_until(lock, deadline, [this] { return sessions_.empty(); })) {
      spdlog::warn("http: {} connection(s) still open after the grace period; closing",
                   sessions_.size());
    }
  }
  ioc_.stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  // Stragglers are owned by handlers queued in the stopped io_context, which only dies with this
  // object; close their sockets now so clients are not left hanging until then. No io thread
  // runs any more, so touching them from here is safe.
  {
    std::lock_guard lock(mu_);
    for (auto& entry : sessions_) {
      if (auto session = entry.second.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) http_detail::close_now(session);
  live.clear();
  beast::error_code ignored;
  acceptor_.close(ignored);
  spdlog::info("http: stopped");
}

HttpServer::HttpServer(HttpServerConfig config, Router router)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(router))) {}

HttpServer::~HttpServer() = default;

void HttpServer::start() { impl_->start(); }

std::uint16_t HttpServer::port() const { return impl_->port(); }

void HttpServer::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

std::size_t HttpServer::active_connections() const { return impl_->serving_.load(); }

}  // namespace painpoint::service
