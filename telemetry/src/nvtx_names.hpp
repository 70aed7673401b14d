// NVTX callbacks: each thread's range stack, and the names behind NVTX handles (domains and
// registered strings) learned from nvtxDomainCreateA / nvtxDomainRegisterStringA callbacks.
// Private to telemetry/ (includes CUPTI headers).
#pragma once

#include <cupti.h>  // callbacks and their NVTX ids (cupti_nvtx_cbid.h)

namespace pbm::telemetry::detail {

struct ThreadState;

/// Handles one NVTX-domain CUPTI callback on the calling thread, whose state is `thread`: range
/// pushes and pops edit its range stack (scope.hpp); domain and string registrations teach names.
void on_nvtx_callback(ThreadState& thread, CUpti_CallbackId cbid, CUpti_NvtxData const* data);

/// Remembers pbm's own NVTX domain handle, which may have been created before CUPTI was attached.
void learn_pbm_domain();

}  // namespace pbm::telemetry::detail
