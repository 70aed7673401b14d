// Host-callable launchers for the consumer's kernels (defined in kernels.cu).
#pragma once

#include <pbm/mailbox_ref.cuh>

#include <cuda_runtime_api.h>

namespace consumer {
constexpr unsigned kStride = 16;  // bytes per record: four unsigned words

cudaError_t launch_produce(pbm::MailboxRef box, unsigned n, cudaStream_t stream);
cudaError_t launch_consume(pbm::MailboxRef box, void* dst, unsigned long long max_records,
                           unsigned long long* count, cudaStream_t stream);
}  // namespace consumer
