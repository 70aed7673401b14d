#include "launch.hpp"

#include "exit_codes.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#ifndef PBM_GUARD_LIBDIR
#define PBM_GUARD_LIBDIR "lib"
#endif

namespace pbm::guard {
namespace {

std::atomic<pid_t> g_child{0};

void forward_signal(int sig) {
  pid_t const child = g_child.load();
  if (child > 0) ::kill(child, sig);
}

std::string dirname_of(std::string const& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string real(std::string const& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : std::string();
}

bool is_file(std::string const& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::vector<std::string> child_environment(std::vector<std::string> const& base, GuardSettings const& s,
                                           std::vector<std::string>* notes) {
  std::vector<std::string> env;
  auto value_in_base = [&base](std::string const& key) -> std::optional<std::string> {
    for (std::string const& e : base)
      if (e.compare(0, key.size() + 1, key + "=") == 0) return e.substr(key.size() + 1);
    return std::nullopt;
  };
  std::vector<std::pair<std::string, std::string>> set;
  auto put = [&set](std::string key, std::string value) { set.emplace_back(std::move(key), std::move(value)); };

  if (auto prev = value_in_base("CUDA_INJECTION64_PATH"); prev && !prev->empty() && *prev != s.inject_library && notes)
    notes->push_back("CUDA_INJECTION64_PATH was " + *prev + "; pbm-guard replaces it (one injection per process)");
  put("CUDA_INJECTION64_PATH", s.inject_library);

  auto nvtx = value_in_base("NVTX_INJECTION64_PATH");
  if (nvtx && !nvtx->empty()) {
    if (notes && *nvtx != s.nvtx_injection)
      notes->push_back("NVTX_INJECTION64_PATH is set to " + *nvtx +
                       "; kept (NVTX ranges reach pbm only if that library is libcupti)");
  } else if (!s.nvtx_injection.empty()) {
    put("NVTX_INJECTION64_PATH", s.nvtx_injection);
    // The injected telemetry loads the same libcupti file that NVTX loads: one CUPTI per process.
    if (auto cupti = value_in_base("PBM_CUPTI_PATH"); !cupti || cupti->empty()) put("PBM_CUPTI_PATH", s.nvtx_injection);
  } else if (notes) {
    notes->push_back("libcupti not found: NVTX ranges will not be attributed (every count shows range \"none\")");
  }
  put(kReportDirEnv, s.report_dir);
  if (s.mode) put("PBM_MODE", *s.mode);
  if (s.prometheus) put("PBM_PROMETHEUS_ADDR", *s.prometheus);

  for (std::string const& e : base) {
    bool replaced = false;
    for (auto const& [k, v] : set) replaced |= e.compare(0, k.size() + 1, k + "=") == 0;
    if (!replaced) env.push_back(e);
  }
  for (auto const& [k, v] : set) env.push_back(k + "=" + v);
  return env;
}

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

std::string self_exe() { return real("/proc/self/exe"); }

std::string find_inject_library(std::string const& exe_path, std::string* searched) {
  std::vector<std::string> candidates;
  if (char const* env = std::getenv(kInjectLibEnv); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  } else {
    std::string const dir = dirname_of(exe_path);
    candidates.push_back(dir + "/libpbm_inject.so");
    candidates.push_back(dir + "/../" PBM_GUARD_LIBDIR "/libpbm_inject.so");
    candidates.push_back(dir + "/../lib/libpbm_inject.so");
    candidates.push_back(dir + "/../lib64/libpbm_inject.so");
  }
  std::string tried;
  for (std::string const& c : candidates) {
    if (is_file(c)) {
      std::string const r = real(c);
      if (!r.empty()) return r;
    }
    tried += (tried.empty() ? "" : ", ") + c;
  }
  if (searched != nullptr) *searched = tried;
  return {};
}

int spawn_and_wait(std::vector<std::string> const& argv, std::vector<std::string> const& env, std::string* error) {
  std::vector<char*> args;
  for (std::string const& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string const& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // Like system(): the terminal's SIGINT/SIGQUIT reach the program (same process group); pbm-guard
  // ignores them so it can still report. The program gets default dispositions back.
  struct sigaction ignore {}, forward {}, old_int {}, old_quit {}, old_term {}, old_hup {};
  ignore.sa_handler = SIG_IGN;
  forward.sa_handler = &forward_signal;
  sigemptyset(&ignore.sa_mask);
  sigemptyset(&forward.sa_mask);
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);
  sigaction(SIGTERM, &forward, &old_term);
  sigaction(SIGHUP, &forward, &old_hup);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGQUIT, SIGTERM, SIGHUP}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);

  pid_t pid = 0;
  int const rc = posix_spawnp(&pid, args[0], nullptr, &attr, args.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  int status = 0;
  if (rc != 0) {
    if (error != nullptr) *error = argv[0] + ": " + std::strerror(rc);
    status = rc == ENOENT ? 127 : 126;
  } else {
    g_child.store(pid);
    int ws = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &ws, 0);
    } while (r < 0 && errno == EINTR);
    g_child.store(0);
    status = r < 0 ? 1 : shell_status(ws);
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  return status;
}

std::string make_temp_dir(std::string* error) {
  char const* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/pbm-guard-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    if (error != nullptr) *error = "cannot create a temporary directory from " + pattern + ": " + std::strerror(errno);
    return {};
  }
  return real(buf.data());
}

void remove_dir(std::string const& dir) noexcept {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string const name = e->d_name;
      if (name == "." || name == "..") continue;
      ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

}  // namespace pbm::guard
