// A loss_server process for the tests that watch the server from outside:
// started on 127.0.0.1:0 with its log in a file, its memory and threads read
// from /proc, stopped with a signal and its exit status checked.
#ifndef LOSSSERVICE_TESTS_SERVER_PROCESS_H_
#define LOSSSERVICE_TESTS_SERVER_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace lossservice::test {

class ServerProcess {
 public:
  /// `binary`: loss_server; `flags` go after --address=127.0.0.1:0.
  ServerProcess(std::string binary, std::vector<std::string> flags);
  /// Kills the process if it still runs.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  /// Starts it and waits (up to 30 s) until its log says where it listens.
  absl::Status Start();
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string address() const;
  /// A channel of its own TCP connection, without message size limits.
  std::shared_ptr<grpc::Channel> NewChannel() const;

  /// Whether the process still runs.
  bool Running();
  /// Resident memory (VmRSS) and thread count, from /proc/PID/status; -1 if
  /// unreadable.
  int64_t RssBytes() const;
  int Threads() const;
  /// The log so far.
  std::string Log() const;

  /// Sends `signal` and waits (up to `timeout_s`) for the exit: the exit
  /// status, 128 + the signal that ended it, or -1 if it did not end (it is
  /// then killed).
  int Stop(int signal, int timeout_s = 30);

 private:
  std::string binary_;
  std::vector<std::string> flags_;
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_status_ = -1;
};

}  // namespace lossservice::test

#endif  // LOSSSERVICE_TESTS_SERVER_PROCESS_H_
