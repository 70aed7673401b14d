// User kernels built against the installed headers: a warp-aggregated push and a block pop.
#include <pbm/device.cuh>

#include "kernels.hpp"

namespace {

struct Record {
  unsigned id, twice, tag, pad;
};
static_assert(sizeof(Record) == consumer::kStride, "record layout");

__global__ void produce(pbm::MailboxRef box, unsigned n) {
  unsigned const i = blockIdx.x * blockDim.x + threadIdx.x;
  Record const r{i, 2 * i, 0xC0FFEEu, 0};
  pbm::warp_push(box, &r, i < n);
}

__global__ void consume(pbm::MailboxRef box, void* dst, unsigned long long max_records,
                        unsigned long long* count) {
  unsigned long long const k = pbm::block_pop(box, dst, max_records);
  if (threadIdx.x == 0) *count = k;
}

}  // namespace

namespace consumer {

cudaError_t launch_produce(pbm::MailboxRef box, unsigned n, cudaStream_t stream) {
  produce<<<(n + 127) / 128, 128, 0, stream>>>(box, n);
  return cudaGetLastError();
}

cudaError_t launch_consume(pbm::MailboxRef box, void* dst, unsigned long long max_records,
                           unsigned long long* count, cudaStream_t stream) {
  consume<<<1, 256, 0, stream>>>(box, dst, max_records, count);
  return cudaGetLastError();
}

}  // namespace consumer
