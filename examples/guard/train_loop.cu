// A tiny training loop for pbm-guard's regression demo: upload once, step on the GPU without a
// host round trip, read the result back once. `--dtoh-in-step` is the regression: the loss read
// back inside every step (what `.item()` does in PyTorch), which pbm-guard catches in `train_step`.
//
//   guard_train_loop [--steps N] [--dtoh-in-step]     exit 0; 77 when there is no CUDA device
//   guard_train_loop --device-count                   prints the number of CUDA devices
//
//   pbm-guard run --budget examples/guard/budget.json -- guard_train_loop                 -> 0
//   pbm-guard run --budget examples/guard/budget.json -- guard_train_loop --dtoh-in-step  -> 3
#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#define CHECK(call)                                                                        \
  do {                                                                                     \
    cudaError_t const e_ = (call);                                                         \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

// One "optimizer step": w -= lr * x * w, and the loss (sum of w) accumulated by atomics.
__global__ void train_step_kernel(float* w, float const* x, float* loss, int n) {
  int const i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    w[i] -= 0.001f * x[i] * w[i];
    atomicAdd(loss, w[i]);
  }
}

int main(int argc, char** argv) {
  int steps = 20;
  bool dtoh_in_step = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--device-count") == 0) {
      int n = 0;
      if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;
      std::printf("%d\n", n);
      return 0;
    } else if (std::strcmp(argv[i], "--dtoh-in-step") == 0) {
      dtoh_in_step = true;
    } else if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--steps N] [--dtoh-in-step] | --device-count\n", argv[0]);
      return 2;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "no CUDA device\n");
    return 77;
  }

  int const n = 1 << 16;
  cudaStream_t stream;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  float *host = nullptr, *x = nullptr, *w = nullptr, *loss = nullptr;
  CHECK(cudaMallocHost(&host, n * sizeof(float)));
  CHECK(cudaMalloc(&x, n * sizeof(float)));
  CHECK(cudaMalloc(&w, n * sizeof(float)));
  CHECK(cudaMalloc(&loss, sizeof(float)));
  for (int i = 0; i < n; ++i) host[i] = 1.0f + static_cast<float>(i % 7);

  // Setup: the one upload, and a warm-up launch so module loading happens outside the loop.
  nvtxRangePushA("setup");
  CHECK(cudaMemcpyAsync(x, host, n * sizeof(float), cudaMemcpyHostToDevice, stream));
  CHECK(cudaMemsetAsync(w, 0, n * sizeof(float), stream));
  CHECK(cudaMemsetAsync(loss, 0, sizeof(float), stream));
  train_step_kernel<<<(n + 255) / 256, 256, 0, stream>>>(w, x, loss, n);
  CHECK(cudaGetLastError());
  nvtxRangePop();

  float seen = 0.0f;
  for (int s = 0; s < steps; ++s) {
    nvtxRangePushA("train_step");
    train_step_kernel<<<(n + 255) / 256, 256, 0, stream>>>(w, x, loss, n);
    if (dtoh_in_step) {  // the regression: a host round trip per step
      CHECK(cudaMemcpyAsync(&seen, loss, sizeof(float), cudaMemcpyDeviceToHost, stream));
      CHECK(cudaStreamSynchronize(stream));
    }
    nvtxRangePop();
  }

  // Readback: the one download and the one wait.
  nvtxRangePushA("readback");
  CHECK(cudaMemcpyAsync(host, loss, sizeof(float), cudaMemcpyDeviceToHost, stream));
  CHECK(cudaStreamSynchronize(stream));
  nvtxRangePop();
  std::printf("steps %d, loss %g%s\n", steps, static_cast<double>(host[0]), dtoh_in_step ? " (read every step)" : "");

  CHECK(cudaFree(loss));
  CHECK(cudaFree(w));
  CHECK(cudaFree(x));
  CHECK(cudaFreeHost(host));
  CHECK(cudaStreamDestroy(stream));
  return 0;
}
