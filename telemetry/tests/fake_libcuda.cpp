// An empty library named libcuda.so.1 for cupti_buffer_test: pbm checks that the CUDA driver is
// loadable before it attaches CUPTI; the fake libcupti depends on this one, so the check finds it
// already loaded. It lives in its own directory, away from every other program's search path.
// Built twice: as the fake's own libcuda.so.1, and (PBM_OTHER_LIBCUDA) as a stand-in for a real driver
// that a test preloads; the fake libcupti must not depend on anything only the first one has.
#if defined(PBM_OTHER_LIBCUDA)
extern "C" __attribute__((visibility("default"))) int pbm_other_libcuda_marker() { return 2; }
#else
extern "C" __attribute__((visibility("default"))) int pbm_fake_libcuda_marker() { return 1; }

// cuPointerGetAttributes, which pbm resolves with dlsym to tell pageable from pinned, device and
// managed memory (cupti_source.cpp memory_kind_of), over a fake address space: 0x1000... pageable
// host, 0x2000... pinned, 0x3000... device, 0x4000... managed; anything else is an error. Only the
// two attributes pbm asks for (CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2, CU_POINTER_ATTRIBUTE_IS_MANAGED = 8).
extern "C" __attribute__((visibility("default"))) int cuPointerGetAttributes(unsigned count, int const* attributes,
                                                                             void** data, unsigned long long ptr) {
  unsigned memory_type = 0, managed = 0;
  switch (ptr >> 12) {
    case 0x1: break;                          // not a CUDA pointer: memory type 0
    case 0x2: memory_type = 1; break;         // CU_MEMORYTYPE_HOST
    case 0x3: memory_type = 2; break;         // CU_MEMORYTYPE_DEVICE
    case 0x4: memory_type = 2; managed = 1; break;
    default: return 1;                        // CUDA_ERROR_INVALID_VALUE
  }
  for (unsigned i = 0; i < count; ++i) {
    if (attributes[i] == 2) *static_cast<unsigned*>(data[i]) = memory_type;
    else if (attributes[i] == 8) *static_cast<unsigned*>(data[i]) = managed;
    else return 1;
  }
  return 0;
}

#endif
