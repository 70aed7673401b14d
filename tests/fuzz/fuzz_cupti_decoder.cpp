// The CUPTI activity decoder and the engine behind it. The fuzz bytes are a program of operations:
// activity records of every kind pbm decodes (MEMCPY as CUpti_ActivityMemcpy6, MEMSET as
// CUpti_ActivityMemset4, SYNCHRONIZATION as CUpti_ActivitySynchronization2, MARKER as
// CUpti_ActivityMarker2) and of kinds it ignores, each a well-formed struct of the CUDA 13.0 layout
// whose fields come from the bytes, fed to ingest_record() as the buffer-completed callback does;
// interleaved with the API calls and NVTX ranges that records are joined with, and (where the
// decoder has it) the copy-call parameter decoder decode_copy_call(). Nothing may crash or read out
// of bounds, and the counters must agree with what went in.
#include "fuzz_input.hpp"

#include "decoder.hpp"
#include "engine.hpp"
#include "scope.hpp"

#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/policy.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

namespace {

union AnyRecord {
  CUpti_Activity base;
  CUpti_ActivityMemcpy6 memcpy;
  CUpti_ActivityMemset4 memset;
  CUpti_ActivitySynchronization2 sync;
  CUpti_ActivityMarker2 marker;
  unsigned char bytes[256];
};

// Reports and range formatting see every violation, with whatever names the input chose.
struct Formatter : pt::Observer {
  void on_violation(pt::Violation const& v) override { (void)pt::format_report(v); }
  void on_memcpy(pt::MemcpyEvent const& ev, bool) override { (void)pt::format_ranges(ev.ranges); }
};

// Enum fields get values an enum of this width can hold (CUPTI's enums reach 0x7fffffff).
template <class E>
E enum_from(pbm::fuzz::Input& in) {
  return static_cast<E>(in.take<std::uint32_t>() & 0x7fffffffu);
}
// The same for an enum field filled from raw bytes, at `offset` in a record (CUPTI's structs are
// packed: no reference to the field; and loading it as the enum would be the out-of-range load).
template <class Record>
void make_enum_valid(Record& record, std::size_t offset) {
  auto* at = reinterpret_cast<unsigned char*>(&record) + offset;
  std::uint32_t raw;
  std::memcpy(&raw, at, 4);
  raw &= 0x7fffffffu;
  std::memcpy(at, &raw, 4);
}

void clear_ranges() {
  while (!pd::current_ranges().empty()) {
    std::string const domain = pd::current_ranges().back().domain;
    pd::nvtx_pop(domain);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  static Formatter formatter;
  pbm::fuzz::Input in(data, size);

  std::size_t const cap = in.pick(9);  // 0..8 range names before "other"
  auto const engine = std::make_unique<pd::Engine>(cap);  // fresh counters for each input
  engine->add_observer(formatter);
  pt::set_mode(pt::Mode::count);
  clear_ranges();
  {
    std::vector<std::string> allow;
    for (std::size_t n = in.pick(3); n > 0; --n) allow.push_back(in.take_string(16));
    pt::set_range_allow_list(std::move(allow));
  }

  std::vector<std::string> strings;  // what marker records point at; stable while they are used
  strings.reserve(512);
  std::set<std::string> pushed{"none", "other"};  // range labels the counters may show
  std::uint64_t decoded = 0, memcpys = 0;
  std::uint64_t starts = 0;

  for (int op = 0; op < 256 && !in.empty(); ++op) {
    AnyRecord r{};
    // Every field of the record from the input; the kind and pointers are then made well-formed.
    switch (in.pick(9)) {
      case 0:
        in.fill(&r.memcpy, sizeof r.memcpy);
        r.memcpy.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
        r.memcpy.reserved0 = nullptr;
        make_enum_valid(r.memcpy, offsetof(CUpti_ActivityMemcpy6, channelType));
        PBM_FUZZ_CHECK(pd::ingest_record(&r.base, *engine), "MEMCPY must be decoded");
        ++decoded;
        ++memcpys;
        break;
      case 1:
        in.fill(&r.memset, sizeof r.memset);
        r.memset.kind = CUPTI_ACTIVITY_KIND_MEMSET;
        r.memset.reserved0 = nullptr;
        make_enum_valid(r.memset, offsetof(CUpti_ActivityMemset4, channelType));
        PBM_FUZZ_CHECK(pd::ingest_record(&r.base, *engine), "MEMSET must be decoded");
        ++decoded;
        break;
      case 2:
        in.fill(&r.sync, sizeof r.sync);
        r.sync.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
        r.sync.type = enum_from<CUpti_ActivitySynchronizationType>(in);
        PBM_FUZZ_CHECK(pd::ingest_record(&r.base, *engine), "SYNCHRONIZATION must be decoded");
        ++decoded;
        break;
      case 3: {
        in.fill(&r.marker, sizeof r.marker);
        r.marker.kind = CUPTI_ACTIVITY_KIND_MARKER;
        r.marker.flags = enum_from<CUpti_ActivityFlag>(in);
        r.marker.objectKind = enum_from<CUpti_ActivityObjectKind>(in);
        std::uint8_t const which = in.take<std::uint8_t>();
        strings.push_back(in.take_string(64));
        r.marker.name = (which & 1) ? strings.back().c_str() : nullptr;
        strings.push_back(in.take_string(16));
        r.marker.domain = (which & 2) ? strings.back().c_str() : nullptr;
        if (r.marker.flags & CUPTI_ACTIVITY_FLAG_MARKER_START) ++starts;
        PBM_FUZZ_CHECK(pd::ingest_record(&r.base, *engine), "MARKER must be decoded");
        ++decoded;
        break;
      }
      case 4: {
        // A kind pbm never enables (a KERNEL record, say): ignored, not counted.
        in.fill(&r.bytes, sizeof r.bytes);
        r.base.kind = enum_from<CUpti_ActivityKind>(in);
        bool const ours = r.base.kind == CUPTI_ACTIVITY_KIND_MEMCPY || r.base.kind == CUPTI_ACTIVITY_KIND_MEMSET ||
                          r.base.kind == CUPTI_ACTIVITY_KIND_SYNCHRONIZATION ||
                          r.base.kind == CUPTI_ACTIVITY_KIND_MARKER;
        if (ours) break;  // its fields were not made for that layout's pointers
        PBM_FUZZ_CHECK(!pd::ingest_record(&r.base, *engine), "an unknown kind must be ignored");
        break;
      }
      case 5: {
        // An API call that copies or synchronises, as the runtime/driver callbacks report it; the
        // records that follow may carry its correlation id.
        bool const runtime = in.take<std::uint8_t>() & 1;
        auto const& specs = runtime ? pd::runtime_callbacks() : pd::driver_callbacks();
        pd::CallbackSpec const& spec = specs[in.pick(specs.size())];
        pd::ApiCall call;
        call.runtime = runtime;
        call.correlation = in.take<std::uint8_t>();  // small ids: records find them
        call.name = spec.name;
        call.cls = spec.cls;
        call.sync_api = spec.sync_api;
        call.stream = in.take<std::uint8_t>();
        engine->api_enter(call);
        if (runtime && (in.take<std::uint8_t>() & 1)) {  // the driver call the runtime makes under it
          pd::ApiCall inner = call;
          inner.runtime = false;
          inner.correlation = in.take<std::uint8_t>();
          engine->api_enter(inner);
          engine->api_exit(inner);
        }
        engine->api_exit(call);
        break;
      }
      case 6: {
        std::string const domain = (in.take<std::uint8_t>() & 1) ? std::string("pbm") : in.take_string(8);
        std::string const name = in.take_string(64);
        pd::nvtx_push(domain, name);
        if (!name.empty()) pushed.insert(name);
        break;
      }
      case 7:
        if (!pd::current_ranges().empty()) pd::nvtx_pop(pd::current_ranges()[in.pick(pd::current_ranges().size())].domain);
        break;
      case 8: {
#if PBM_FUZZ_HAVE_DECODE_COPY_CALL
        // A copy call's parameters (CUpti_CallbackData::functionParams), as the source decodes them
        // when MEMCPY records are off, then judged like a record. Pointers are only classified.
        bool const runtime = in.take<std::uint8_t>() & 1;
        auto const& specs = runtime ? pd::runtime_callbacks() : pd::driver_callbacks();
        CUpti_CallbackId const cbid =
            (in.take<std::uint8_t>() & 7) != 0 ? specs[in.pick(specs.size())].cbid : in.take<std::uint16_t>();
        in.fill(&r.bytes, sizeof r.bytes);
        auto const kind_of = [](void const* p) {
          return static_cast<pt::MemoryKind>(reinterpret_cast<std::uintptr_t>(p) % pt::kMemoryKindCount);
        };
        std::optional<pt::MemcpyEvent> ev = pd::decode_copy_call(
            runtime ? CUPTI_CB_DOMAIN_RUNTIME_API : CUPTI_CB_DOMAIN_DRIVER_API, cbid, r.bytes, kind_of);
        if (ev) {
          PBM_FUZZ_CHECK(static_cast<std::size_t>(ev->direction) < pt::kDirectionCount &&
                             static_cast<std::size_t>(ev->src_kind) < pt::kMemoryKindCount &&
                             static_cast<std::size_t>(ev->dst_kind) < pt::kMemoryKindCount,
                         "a decoded copy has an out-of-range label");
          ev->correlation = in.take<std::uint8_t>();
          engine->on_memcpy(*ev);
          ++memcpys;
          ++decoded;  // on_memcpy counts it in records_processed, like a MEMCPY record
        }
        PBM_FUZZ_CHECK(!pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, cbid, nullptr, kind_of),
                       "no parameters, no copy");
#endif
        break;
      }
    }
  }

  pt::Counters const& counters = engine->counters();
  PBM_FUZZ_CHECK(counters.health().records_processed.load() == decoded, "every decoded record is counted once");
  PBM_FUZZ_CHECK(counters.memcpy_total(false) + counters.memcpy_total(true) == memcpys,
                 "every MEMCPY record is counted once (mode count)");
  std::set<std::string> labels;
  for (pt::CounterSample const& s : counters.snapshot()) {
    auto it = s.labels.find("range");
    if (it == s.labels.end()) continue;
    bool const known = std::any_of(pushed.begin(), pushed.end(), [&](std::string const& name) {
      return name.compare(0, it->second.size(), it->second) == 0;  // the name, or its beginning if capped
    });
    PBM_FUZZ_CHECK(known, "range label '" + it->second + "' was never an NVTX range");
    labels.insert(it->second);
  }
  PBM_FUZZ_CHECK(labels.size() <= cap + 2, "more range labels than the cap allows");
  for (auto const& [domain, name] : engine->observed_ranges()) (void)pt::format_ranges({{domain, name}});
  std::size_t open = 0;
  for (std::uint32_t t : {0u, 1u, 255u, 0xffffffffu}) open += engine->marker_ranges(t).size();
  PBM_FUZZ_CHECK(open <= starts, "more open marker ranges than MARKER start records");
  clear_ranges();
  engine->remove_observer(formatter);
  return 0;
}
