// Host backtraces: raw capture at the API call, symbolisation only for reports.
#include "scope.hpp"

#include "fnv.hpp"

#include <cstdlib>
#include <cxxabi.h>
#include <execinfo.h>

namespace pbm::telemetry::detail {
namespace {

// "binary(mangled+0x1f) [0x...]" -> "binary(demangled+0x1f) [0x...]"
std::string demangle_line(char const* line) {
  std::string text(line);
  auto open = text.find('(');
  auto plus = text.find('+', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || plus == std::string::npos || plus <= open + 1) return text;
  std::string mangled = text.substr(open + 1, plus - open - 1);
  int status = 0;
  char* name = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  if (status != 0 || name == nullptr) return text;
  std::string out = text.substr(0, open + 1) + name + text.substr(plus);
  std::free(name);
  return out;
}

}  // namespace

Backtrace Backtrace::capture() noexcept {
  Backtrace bt;
  bt.depth = ::backtrace(bt.frames.data(), static_cast<int>(bt.frames.size()));
  return bt;
}

std::vector<std::string> Backtrace::symbolise() const {
  std::vector<std::string> out;
  if (depth <= 0) return out;
  char** symbols = ::backtrace_symbols(frames.data(), depth);
  if (symbols == nullptr) return out;
  out.reserve(static_cast<std::size_t>(depth));
  for (int i = 0; i < depth; ++i) out.push_back(demangle_line(symbols[i]));
  std::free(symbols);
  // Start the report at the user's side of the CUDA call: drop pbm's own frames and CUPTI's and
  // the driver's callback machinery (the libcudart frame naming the API stays).
  std::size_t first = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::string const& f = out[i];
    if (f.find("libcupti.so") != std::string::npos || f.find("libcuda.so") != std::string::npos ||
        f.find("pbm::telemetry::detail::") != std::string::npos) {
      first = i + 1;
    }
    if (f.find("libcudart") != std::string::npos) break;
  }
  if (first < out.size()) out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(first));
  return out;
}

std::uint64_t Backtrace::site_hash() const noexcept {
  // Over the return addresses' bytes: the same call site gives the same chain of callers.
  return fnv1a(std::string_view(reinterpret_cast<char const*>(frames.data()),
                                static_cast<std::size_t>(depth) * sizeof(void*)));
}

}  // namespace pbm::telemetry::detail
