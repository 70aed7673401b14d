// NVTX callbacks: each thread's range stack, and the names behind NVTX handles (domains and
// registered strings) learned from nvtxDomainCreateA / nvtxDomainRegisterStringA callbacks.
// Private to telemetry/ (includes CUPTI headers).
#pragma once

#include <cupti.h>  // callbacks and their NVTX ids (cupti_nvtx_cbid.h)

namespace pbm::telemetry::detail {

/// Handles one NVTX-domain CUPTI callback on the calling thread: range pushes and pops edit the
/// thread's range stack (scope.hpp); domain and string registrations teach names.
void on_nvtx_callback(CUpti_CallbackId cbid, CUpti_NvtxData const* data);

/// Remembers pbm's own NVTX domain handle, which may have been created before CUPTI was attached.
void learn_pbm_domain();

}  // namespace pbm::telemetry::detail
