// Who is reporting: pid, argv[0], host and rank.
#include <pbm/exporters/json_report.hpp>

#include <pbm/telemetry/telemetry.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include <unistd.h>

namespace pbm::exporters {

ProcessInfo process_info() {
  ProcessInfo p;
  p.pid = static_cast<long>(::getpid());
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::getline(cmdline, p.argv0, '\0');
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) p.hostname = host;
  p.rank = telemetry::rank_from_env();
  if (char const* v = std::getenv("LOCAL_RANK"); v != nullptr) p.local_rank = v;
  return p;
}

}  // namespace pbm::exporters
