// CUPTI activity records and API callback ids -> pbm's event model.
// Private to telemetry/ (includes CUPTI headers); visible to tests, which feed real CUPTI structs
// through the same entry point the buffer-completed callback uses.
#pragma once

#include "engine.hpp"

#include <cupti_activity.h>
#include <cupti_callbacks.h>

#include <optional>
#include <vector>

namespace pbm::telemetry::detail {

Direction decode_direction(std::uint8_t copy_kind) noexcept;
MemoryKind decode_memory(std::uint32_t memory_kind) noexcept;
SyncApi decode_sync_type(CUpti_ActivitySynchronizationType type) noexcept;

MemcpyEvent decode_memcpy(CUpti_ActivityMemcpy6 const& r);
MemsetEvent decode_memset(CUpti_ActivityMemset4 const& r);
SyncEvent decode_sync(CUpti_ActivitySynchronization2 const& r);
MarkerEvent decode_marker(CUpti_ActivityMarker2 const& r);

/// Decodes one activity record and hands it to `sink`. Returns false (and ignores it) for kinds
/// pbm does not enable. The CUPTI buffer callback calls this for every record of a buffer.
bool ingest_record(CUpti_Activity const* record, Engine& sink);
inline bool ingest_record(CUpti_Activity const* record) { return ingest_record(record, engine()); }

/// Where a pointer's memory lives (pageable, pinned, device, managed; unknown for null). The CUPTI
/// source asks the driver (cuPointerGetAttributes); tests pass a fake.
using MemoryKindOf = MemoryKind (*)(void const* ptr);

/// Direction of a copy between memory of these kinds (host = pageable or pinned; device = device
/// or managed); unknown when either side is unknown.
Direction direction_between(MemoryKind src, MemoryKind dst) noexcept;

/// A copy as the parameters of its API call describe it (CUpti_CallbackData::functionParams), for
/// when MEMCPY activity records are off: direction, bytes, memory kinds of both ends, async flag.
/// nullopt for copy APIs whose parameters pbm does not decode (3D, array and batch copies, the
/// 32-bit legacy driver calls): the caller counts those with direction unknown.
std::optional<MemcpyEvent> decode_copy_call(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params,
                                            MemoryKindOf kind_of);

/// The memory kind of a non-Async memset's target (cudaMemset/2D/3D and their _ptds variants,
/// cuMemsetD8/16/32 and cuMemsetD2D8/16/32 _v2 and _v2_ptds), from the call's parameters; nullopt
/// for other calls.
std::optional<MemoryKind> decode_memset_target(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params,
                                               MemoryKindOf kind_of);

/// True for a free that frees nothing: cudaFree(0) ("no operation is performed", the usual way to
/// create the context), cudaFreeHost, cudaFreeArray, cudaFreeMipmappedArray and their driver twins
/// with a null pointer or handle. False for other calls, and when the parameters are missing.
bool frees_nothing(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params) noexcept;

/// The API callback ids pbm enables, with what each call does. Runtime and driver domains.
/// Group legacy_rule: enabled only while the legacy default stream rule is on (kernel launches,
/// async memsets, stream creation: every launch then costs a callback).
struct CallbackSpec {
  enum class Group : std::uint8_t { always, legacy_rule };
  CUpti_CallbackId cbid;
  char const* name;
  ApiCall::Class cls;
  SyncApi sync_api;  // for Class::sync
  Group group{Group::always};
};
std::vector<CallbackSpec> const& runtime_callbacks();
std::vector<CallbackSpec> const& driver_callbacks();
/// The spec for a callback id of a domain, or nullptr when pbm does not watch it.
CallbackSpec const* find_callback(CUpti_CallbackDomain domain, CUpti_CallbackId cbid) noexcept;

}  // namespace pbm::telemetry::detail
