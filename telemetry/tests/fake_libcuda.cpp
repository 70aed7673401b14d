// An empty library named libcuda.so.1 for cupti_buffer_test: pbm checks that the CUDA driver is
// loadable before it attaches CUPTI; the fake libcupti depends on this one, so the check finds it
// already loaded. It lives in its own directory, away from every other program's search path.
// Built twice: as the fake's own libcuda.so.1, and (PBM_OTHER_LIBCUDA) as a stand-in for a real driver
// that a test preloads; the fake libcupti must not depend on anything only the first one has.
#if defined(PBM_OTHER_LIBCUDA)
extern "C" __attribute__((visibility("default"))) int pbm_other_libcuda_marker() { return 2; }
#else
extern "C" __attribute__((visibility("default"))) int pbm_fake_libcuda_marker() { return 1; }
#endif
