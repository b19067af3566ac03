// Helpers for tests that run a server process of their own (redis-server, openssl) on the
// loopback interface: a free port, a TCP probe, spawning with the output in a log, and
// ServerProcess, which owns such a process and its temporary folder.
#ifndef HIRECACHE_TEST_SUPPORT_TEST_SERVER_H_
#define HIRECACHE_TEST_SUPPORT_TEST_SERVER_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace hirecache {
namespace testing_support {

// 127.0.0.1:`port`.
inline sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A loopback TCP port nobody listens on (for a moment).
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Loopback(0);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A blocking socket connected to 127.0.0.1:`port`, or -1 when nothing accepts there.
inline int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr = Loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whether something accepts TCP connections on 127.0.0.1:`port`.
inline bool AcceptsTcp(int port) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// Starts `args` (args[0] looked up in PATH) with stdin from /dev/null and stdout and stderr
// appended to `log`; 0 when it could not be started.
inline pid_t Spawn(std::vector<std::string> args, const std::string& log) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : 0;
}

// Waits for `pid` to end: its exit status, -1 when it did not exit normally.
inline int Wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A server process in a temporary folder of its own (/tmp/<prefix>-XXXXXX), its stdout and
// stderr in stdout.log there. The constructor starts it and waits, up to `timeout`, until
// `ready` holds or the process has exited; the destructor kills it (SIGKILL), waits for it
// and removes the folder.
class ServerProcess {
 public:
  // `args(dir)`: the command line, given the temporary folder.
  ServerProcess(const std::string& prefix,
                const std::function<std::vector<std::string>(const std::string& dir)>& args,
                const std::function<bool()>& ready,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return;
    dir_ = tmpl;
    pid_ = Spawn(args(dir_), dir_ + "/stdout.log");
    auto limit = std::chrono::steady_clock::now() + timeout;
    while (pid_ != 0) {
      ready_ = ready();
      if (ready_ || std::chrono::steady_clock::now() >= limit) break;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {  // it exited
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~ServerProcess() {
    if (pid_ != 0) {
      kill(pid_, SIGKILL);
      Wait(pid_);
    }
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    if (ec) ADD_FAILURE() << "could not remove " << dir_ << ": " << ec.message();
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // The temporary folder; empty when it could not be made.
  const std::string& dir() const { return dir_; }
  // Whether the process was started and has not been seen to exit.
  bool alive() const { return pid_ != 0; }
  // Whether `ready` held before the constructor returned.
  bool ready() const { return ready_; }

 private:
  std::string dir_;
  pid_t pid_ = 0;
  bool ready_ = false;
};

}  // namespace testing_support
}  // namespace hirecache

#endif  // HIRECACHE_TEST_SUPPORT_TEST_SERVER_H_
