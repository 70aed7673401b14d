# Proves that a program built with NVTX_DISABLE (PBM_ENABLE_NVTX=OFF) has no NVTX symbols, while
# the same code built with NVTX has them. Both probes are linked with --gc-sections: NVTX 3's C
# header defines weak globals in every TU that includes it, even with NVTX_DISABLE; only what the
# code references survives.
# Usage: cmake -DNM=nm -DON=probe_on -DOFF=probe_off -P check_nvtx_symbols.cmake
foreach(var NM ON OFF)
  if("${${var}}" STREQUAL "")  # not if(NOT ${var}): a path is no boolean (CMake 4 reads it as one)
    message(FATAL_ERROR "check_nvtx_symbols: ${var} not set")
  endif()
endforeach()

function(symbols exe out)
  execute_process(COMMAND "${NM}" "${exe}" OUTPUT_VARIABLE text RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} ${exe} failed (${rc}): ${err}")
  endif()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

symbols("${ON}" on)
symbols("${OFF}" off)
foreach(sym nvtxGlobals_v3 nvtxDomainRangePushEx)
  if(NOT on MATCHES "${sym}")
    message(FATAL_ERROR "NVTX-enabled probe lacks ${sym}: the check would prove nothing")
  endif()
endforeach()
string(REGEX MATCHALL "[^\n]*nvtx[^\n]*" leaked "${off}")
if(leaked)
  string(REPLACE ";" "\n  " leaked "${leaked}")
  message(FATAL_ERROR "NVTX_DISABLE build still has NVTX symbols:\n  ${leaked}")
endif()
message(STATUS "NVTX symbols only in the enabled build (disabled build: none)")
