// Plays the CUDA driver's part for a CPU test: dlopens $CUDA_INJECTION64_PATH and calls its
// InitializeInjection, as cuInit does. pbm-guard then sees the marker and the exit-time report.
// With --kill it then dies by SIGKILL (no exit handlers: the marker without a report).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

int main(int argc, char** argv) {
  bool const kill_self = argc > 1 && std::strcmp(argv[1], "--kill") == 0;
  char const* path = std::getenv("CUDA_INJECTION64_PATH");
  if (path == nullptr) {
    std::fprintf(stderr, "inject_smoke: CUDA_INJECTION64_PATH not set\n");
    return 10;
  }
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "inject_smoke: %s\n", dlerror());
    return 11;
  }
  auto init = reinterpret_cast<int (*)()>(dlsym(lib, "InitializeInjection"));
  if (init == nullptr) {
    std::fprintf(stderr, "inject_smoke: no InitializeInjection in %s\n", path);
    return 12;
  }
  int const rc = init();
  std::printf("inject_smoke: InitializeInjection returned %d\n", rc);
  std::fflush(stdout);
  if (kill_self) std::raise(SIGKILL);
  return 0;  // exit() runs the library's atexit handler: the report is written
}
