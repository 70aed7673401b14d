// A program linked with pbm::telemetry only, run where libcupti cannot be loaded
// (PBM_CUPTI_PATH points at a missing file): it starts, prints one line, keeps running.
#include <pbm/telemetry/telemetry.hpp>

#include <cstdio>

int main() {
  pbm::telemetry::start();
  pbm::telemetry::Status const st = pbm::telemetry::status();
  pbm::telemetry::flush();
  pbm::telemetry::counters().add_violation(pbm::telemetry::Rule::sync_unexpected);  // counters still work
  std::printf("still running: attached=%d reason=%s\n", st.attached ? 1 : 0, st.reason.c_str());
  pbm::telemetry::stop();
  return st.attached ? 1 : 0;
}
