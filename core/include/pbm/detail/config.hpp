// Compiler glue shared by host and device code.
#pragma once

#if defined(__CUDACC__)
#define PBM_HD __host__ __device__
#define PBM_DEVICE __device__
#else
#define PBM_HD
#define PBM_DEVICE
#endif

#if defined(__CUDA_ARCH__)
#define PBM_DEVICE_CODE 1
#else
#define PBM_DEVICE_CODE 0
#endif
