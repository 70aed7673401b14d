// An empty library named libcuda.so.1 for cupti_buffer_test: pbm checks that the CUDA driver is
// loadable before it attaches CUPTI; the fake libcupti depends on this one, so the check finds it
// already loaded. It lives in its own directory, away from every other program's search path.
extern "C" __attribute__((visibility("default"))) int pbm_fake_libcuda_marker() { return 1; }
