#include "tests/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

extern char** environ;

namespace lossservice::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The value of `key` ("VmRSS:", "Threads:") in /proc/PID/status, or -1.
int64_t StatusField(pid_t pid, const std::string& key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    std::istringstream fields(line.substr(key.size()));
    int64_t value = -1;
    fields >> value;
    return value;
  }
  return -1;
}

}  // namespace

ServerProcess::ServerProcess(std::string binary, std::vector<std::string> flags)
    : binary_(std::move(binary)), flags_(std::move(flags)) {
  static int count = 0;
  log_path_ = absl::StrCat(::testing::TempDir(), "loss_server_", getpid(), "_", ++count, ".log");
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && exit_status_ < 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::remove(log_path_.c_str());
}

absl::Status ServerProcess::Start() {
  std::vector<std::string> args = {binary_, "--address=127.0.0.1:0"};
  args.insert(args.end(), flags_.begin(), flags_.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  const int spawned = posix_spawn(&pid_, binary_.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return absl::InternalError(absl::StrCat("cannot run ", binary_));
  const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    std::smatch match;
    const std::string log = Log();
    if (std::regex_search(log, match, listening)) {
      port_ = std::stoi(match[1]);
      return absl::OkStatus();
    }
    if (!Running()) return absl::InternalError(absl::StrCat("loss_server exited: ", log));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("loss_server did not listen in 30 s: ", Log()));
}

std::string ServerProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::shared_ptr<grpc::Channel> ServerProcess::NewChannel() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
}

bool ServerProcess::Running() {
  if (pid_ <= 0 || exit_status_ >= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == 0) return true;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

int64_t ServerProcess::RssBytes() const {
  const int64_t kb = StatusField(pid_, "VmRSS:");
  return kb < 0 ? -1 : kb * 1024;
}

int ServerProcess::Threads() const { return static_cast<int>(StatusField(pid_, "Threads:")); }

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

int ServerProcess::Stop(int signal, int timeout_s) {
  if (!Running()) return exit_status_;
  kill(pid_, signal);
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  while (Clock::now() < deadline) {
    if (!Running()) return exit_status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  exit_status_ = 128 + SIGKILL;
  return -1;
}

}  // namespace lossservice::test
