// Telemetry's lifecycle inside someone else's process, driven on a CPU: pbm attaches to a stand-in
// libcupti (fake_cupti.cpp, through PBM_CUPTI_PATH) and the test plays CUPTI, delivering API and
// NVTX callbacks on the threads that "call CUDA". Each case is a way a real program ends threads,
// exits, forks, detaches or restarts telemetry while CUDA calls are in flight.
#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/observer.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <cupti.h>
#include <generated_nvtx_meta.h>

#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#ifndef PBM_FAKE_CUPTI_PATH
#error "PBM_FAKE_CUPTI_PATH must name the fake libcupti"
#endif

namespace pt = pbm::telemetry;

// getenv/setenv of this program, watched: telemetry calls them through these (the executable's
// definitions win), so the test sees whether a scrape's getenv runs while start() is inside setenv.
namespace {
std::atomic<bool> g_watch{false};
std::atomic<bool> g_in_setenv{false};
std::atomic<int> g_getenv_during_setenv{0};
bool is_rank(char const* name) { return std::strcmp(name, "RANK") == 0 || std::strcmp(name, "LOCAL_RANK") == 0; }
}  // namespace

extern "C" char* getenv(char const* name) {  // glibc's, without a lookup of the real one
  if (g_watch.load() && g_in_setenv.load() && is_rank(name)) ++g_getenv_during_setenv;
  std::size_t const n = std::strlen(name);
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  }
  return nullptr;
}

extern "C" int setenv(char const* name, char const* value, int overwrite) {
  using SetenvFn = int (*)(char const*, char const*, int);
  static SetenvFn const real = reinterpret_cast<SetenvFn>(::dlsym(RTLD_NEXT, "setenv"));
  if (!g_watch.load() || std::strcmp(name, "NVTX_INJECTION64_PATH") != 0) return real(name, value, overwrite);
  g_in_setenv = true;  // glibc rewrites `environ` here: a concurrent getenv may read freed memory
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  int const r = real(name, value, overwrite);
  g_in_setenv = false;
  return r;
}

namespace {

using ApiFn = std::uint32_t (*)(int, std::uint32_t, int, std::uint32_t, void const*);
using NvtxFn = int (*)(std::uint32_t, void const*);

ApiFn g_api = nullptr;
NvtxFn g_nvtx = nullptr;

/// Entry and exit of a CUDA call as CUPTI reports them; returns false when nothing was delivered.
bool call(CUpti_CallbackDomain domain, CUpti_CallbackId cbid) {
  std::uint32_t const id = g_api(domain, cbid, 1, 0, nullptr);
  if (id == 0) return false;
  g_api(domain, cbid, 0, id, nullptr);
  return true;
}
bool device_synchronize() { return call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020); }
bool ctx_synchronize() { return call(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize); }
bool nvtx_push(char const* name) {
  nvtxRangePushA_params p{name};
  return g_nvtx(CUPTI_CBID_NVTX_nvtxRangePushA, &p) != 0;
}
bool nvtx_pop() {
  nvtxRangePop_params p{nullptr};
  return g_nvtx(CUPTI_CBID_NVTX_nvtxRangePop, &p) != 0;
}

std::uint64_t device_syncs(bool expected, char const* range) {
  return pt::counters().sync_count(pt::SyncApi::device_synchronize, expected, range);
}

void start_attached() {
  ::setenv("PBM_CUPTI_PATH", PBM_FAKE_CUPTI_PATH, 1);
  pt::Config config;
  config.mode = pt::Mode::count;
  config.set_nvtx_injection = false;
  pt::start(config);
}

class Lifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    start_attached();
    pt::Status const st = pt::status();
    ASSERT_TRUE(st.attached) << "could not attach to the fake libcupti: " << st.reason;
    void* lib = ::dlopen(PBM_FAKE_CUPTI_PATH, RTLD_NOW | RTLD_NOLOAD);
    ASSERT_NE(lib, nullptr);
    g_api = reinterpret_cast<ApiFn>(::dlsym(lib, "pbm_fake_cupti_api"));
    g_nvtx = reinterpret_cast<NvtxFn>(::dlsym(lib, "pbm_fake_cupti_nvtx"));
    ASSERT_NE(g_api, nullptr);
    ASSERT_NE(g_nvtx, nullptr);
    pt::set_range_allow_list({});
  }
  void TearDown() override {
    pt::set_range_allow_list({});
    pt::set_mode(pt::Mode::count);
  }
};

/// Freed heap memory is overwritten (glibc's M_PERTURB) while it lives: a read of freed per-thread
/// state then sees garbage instead of the old bytes. AddressSanitizer builds catch it anyway.
struct PerturbFreedMemory {
  PerturbFreedMemory() { mallopt(M_PERTURB, 0xa5); }
  ~PerturbFreedMemory() { mallopt(M_PERTURB, 0); }
};

/// A thread_local of the user's whose destructor synchronises (as a CUDA object freed at thread
/// exit does): it is constructed before pbm's per-thread state, so it is destroyed after it.
struct SyncAtThreadExit {
  bool armed = false;
  ~SyncAtThreadExit() {
    if (armed) device_synchronize();
  }
};

}  // namespace

TEST_F(Lifecycle, SyncInAThreadLocalDestructorAfterPbmsOwnThreadState) {
  PerturbFreedMemory perturb;
  std::uint64_t const before = device_syncs(false, "outer");
  std::thread t([] {
    thread_local SyncAtThreadExit late;  // first: destroyed last
    late.armed = true;
    nvtx_push("outer");                   // pbm's per-thread state begins here, never popped
    nvtx_push("inner");
    nvtx_pop();
  });
  t.join();
  // The sync ran after every other thread_local of its thread was gone; pbm still counts it, in the
  // range the thread had open.
  EXPECT_EQ(device_syncs(false, "outer") - before, 1u);
}

namespace {
/// A static of the user's, created after start(), whose destructor synchronises at exit().
struct SyncAtExit {
  ~SyncAtExit() {
    std::uint64_t const before = device_syncs(false, "main_range");
    device_synchronize();
    std::_Exit(device_syncs(false, "main_range") == before + 1 ? 0 : 3);
  }
};
}  // namespace

TEST_F(Lifecycle, SyncInAStaticDestructorAtExit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: SetUp attaches there
  // Small frees go to glibc's per-thread cache unperturbed; the fresh process runs without it.
  ::setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
  EXPECT_EXIT(
      {
        PerturbFreedMemory perturb;
        nvtx_push("main_range");
        static SyncAtExit late;  // constructed after start(): destroyed before pbm's exit handler
        (void)late;
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(Lifecycle, DetachWhileAnotherThreadIsInsideARuntimeCall) {
  std::uint64_t const before = pt::counters().sync_count(pt::SyncApi::context_synchronize, false, "");
  std::promise<void> entered, go;
  std::shared_future<void> go_now = go.get_future().share();
  std::thread t([&entered, go_now] {
    // Inside cudaDeviceSynchronize when another thread detaches: its exit callback never comes.
    g_api(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020, 1, 0, nullptr);
    entered.set_value();
    go_now.wait();
    for (int i = 0; i < 5; ++i) ctx_synchronize();  // driver syncs of its own, after attach
  });
  entered.get_future().wait();
  pt::detach();
  ASSERT_TRUE(pt::attach());
  go.set_value();
  t.join();
  EXPECT_EQ(pt::counters().sync_count(pt::SyncApi::context_synchronize, false, "") - before, 5u);
}

TEST_F(Lifecycle, RangeClosedWhileDetachedDoesNotStayOpen) {
  pt::set_range_allow_list({"checkpoint"});
  ASSERT_TRUE(nvtx_push("checkpoint"));
  pt::detach();
  EXPECT_FALSE(nvtx_pop());  // CUPTI delivers nothing to a detached pbm
  ASSERT_TRUE(pt::attach());
  std::uint64_t const unexpected = device_syncs(false, "");
  std::uint64_t const violations = pt::counters().violation_total();
  ASSERT_TRUE(device_synchronize());
  // The allow-listed range was closed long ago: this sync is outside it.
  EXPECT_EQ(device_syncs(false, "") - unexpected, 1u);
  EXPECT_EQ(device_syncs(true, "checkpoint"), 0u);
  EXPECT_EQ(pt::counters().violation_total() - violations, 1u);
}

TEST_F(Lifecycle, StopThenStartWithAnotherCapKeepsTheCounters) {
  pt::Counters& held = pt::counters();  // as an exporter holds it
  std::size_t const cap = held.range_label_cap();
  ASSERT_TRUE(device_synchronize());
  std::uint64_t const counted = device_syncs(false, "");
  pt::stop();
  pt::Config config;
  config.mode = pt::Mode::count;
  config.set_nvtx_injection = false;
  config.range_label_cap = cap == 8 ? 9 : 8;
  pt::start(config);
  EXPECT_EQ(&pt::counters(), &held);
  EXPECT_EQ(held.range_label_cap(), cap);
  EXPECT_EQ(held.sync_count(pt::SyncApi::device_synchronize, false, ""), counted);
}

namespace {
// A forked child's copy of the heap holds what threads it does not have were using (the poller's
// Status strings): LeakSanitizer would call that a leak at the child's exit.
bool g_forked_child = false;
}  // namespace
extern "C" int __lsan_is_turned_off() { return g_forked_child ? 1 : 0; }

TEST_F(Lifecycle, ForkedChildrenExitWhileAnotherThreadReadsStatus) {
  constexpr int kChildren = 200;
  std::atomic<bool> done{false};
  std::thread poller([&done] {
    while (!done.load()) (void)pt::status();  // as an exporter scrape does
  });
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i) {
    pid_t const pid = ::fork();
    if (pid == 0) {
      g_forked_child = true;
      std::exit(0);  // runs pbm's exit handler
    }
    ASSERT_GT(pid, 0);
    children.push_back(pid);
  }
  done.store(true);
  poller.join();
  auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int exited = 0, hung = 0, failed = 0;
  for (pid_t pid : children) {
    int status = 0;
    pid_t r = 0;
    while ((r = ::waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (r == 0) {
      ++hung;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ++exited;
    } else {
      ++failed;
    }
  }
  EXPECT_EQ(hung, 0) << hung << " of " << kChildren << " forked children hung in exit()";
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(exited, kChildren);
}

TEST_F(Lifecycle, ForkedChildIsCleanlyOff) {
  ASSERT_TRUE(device_synchronize());
  pid_t const pid = ::fork();
  if (pid == 0) {
    // Defined state: detached, saying why, counting nothing more, calling nothing of CUPTI's.
    pt::Status const st = pt::status();
    std::uint64_t const before = device_syncs(false, "");
    device_synchronize();  // the child's copy of the subscriber still delivers it
    bool const ok = !st.attached && st.reason.find("fork") != std::string::npos &&
                    device_syncs(false, "") == before && !pt::attach();
    std::_Exit(ok ? 0 : 1);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  // The parent goes on counting.
  std::uint64_t const before = device_syncs(false, "");
  ASSERT_TRUE(device_synchronize());
  EXPECT_EQ(device_syncs(false, "") - before, 1u);
}

namespace {
struct CountingObserver : pt::Observer {
  std::atomic<int> syncs{0};
  void on_sync(pt::SyncEvent const&, bool) override { ++syncs; }
};
}  // namespace

TEST_F(Lifecycle, SeveralObserversSeeEveryEventUntilRemoved) {
  CountingObserver a, b;
  pt::add_observer(a);
  pt::add_observer(b);
  ASSERT_TRUE(device_synchronize());
  EXPECT_EQ(a.syncs.load(), 1);
  EXPECT_EQ(b.syncs.load(), 1);
  pt::remove_observer(a);
  ASSERT_TRUE(device_synchronize());
  EXPECT_EQ(a.syncs.load(), 1);
  EXPECT_EQ(b.syncs.load(), 2);
  EXPECT_THROW(pt::add_observer(b), std::invalid_argument);  // registered already
  pt::remove_observer(b);
  ASSERT_TRUE(device_synchronize());
  EXPECT_EQ(b.syncs.load(), 2);
}

namespace {
/// Sleeps inside its callback so that remove_observer() on another thread finds it busy.
struct SlowObserver : pt::Observer {
  std::atomic<bool> inside{false};
  std::atomic<bool> returned{false};
  void on_sync(pt::SyncEvent const&, bool) override {
    inside = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    returned = true;
  }
};
}  // namespace

TEST_F(Lifecycle, RemoveObserverWaitsForACallInFlight) {
  SlowObserver slow;
  pt::add_observer(slow);
  std::thread caller([] { device_synchronize(); });
  while (!slow.inside.load()) std::this_thread::yield();
  pt::remove_observer(slow);  // must not return while on_sync runs: `slow` may be destroyed next
  EXPECT_TRUE(slow.returned.load());
  caller.join();
}

TEST_F(Lifecycle, ScrapesNeverReadTheEnvironmentWhileStartSetsIt) {
  g_watch = true;
  std::atomic<bool> done{false};
  std::thread scraper([&done] {
    while (!done.load()) (void)pt::rank_from_env();  // what exporters::collect() does at each scrape
  });
  for (int i = 0; i < 100; ++i) {
    ::unsetenv("NVTX_INJECTION64_PATH");
    EXPECT_FALSE(pt::ensure_nvtx_injection().empty());  // what start() does: setenv
  }
  done = true;
  scraper.join();
  g_watch = false;
  ::unsetenv("NVTX_INJECTION64_PATH");
  EXPECT_EQ(g_getenv_during_setenv.load(), 0);
}
