# Installs the pbm build into a fresh prefix, then configures, builds and runs the consumer project
# against it. Run by CTest (test `consumer`):
#   cmake -DPBM_BUILD_DIR=... -DWORK_DIR=... -DCONSUMER_SOURCE_DIR=... -DGENERATOR=... [-D...] -P run.cmake
foreach(var PBM_BUILD_DIR WORK_DIR CONSUMER_SOURCE_DIR GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_step name)
  message(STATUS "consumer: ${name}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer: ${name} failed (${rc})")
  endif()
endfunction()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")  # nothing stale from an earlier install or configure

set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
run_step(install "${CMAKE_COMMAND}" --install "${PBM_BUILD_DIR}" --prefix "${prefix}" ${config_args})

# Only the fresh prefix and the dependency prefixes of the main build: never the build tree.
# List values arrive with ',' for ';' (a ';' would split the CTest command line).
set(prefix_path "${prefix}")
if(PARENT_PREFIX_PATH)
  string(REPLACE "," ";" parent "${PARENT_PREFIX_PATH}")
  list(APPEND prefix_path ${parent})
endif()
string(REPLACE ";" "\\;" prefix_path_arg "${prefix_path}")
set(configure_args -S "${CONSUMER_SOURCE_DIR}" -B "${build}" -G "${GENERATOR}"
  "-DCMAKE_PREFIX_PATH=${prefix_path_arg}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
foreach(var CMAKE_BUILD_TYPE CMAKE_CUDA_ARCHITECTURES CMAKE_CXX_COMPILER CMAKE_CUDA_COMPILER
            CMAKE_CUDA_HOST_COMPILER CMAKE_MAKE_PROGRAM)
  if(${var})
    string(REPLACE "," ";" value "${${var}}")
    string(REPLACE ";" "\\;" value "${value}")
    list(APPEND configure_args "-D${var}=${value}")
  endif()
endforeach()
if(REQUIRE_TELEMETRY)
  list(APPEND configure_args -DPBM_CONSUMER_REQUIRE_TELEMETRY=ON)
endif()
run_step(configure "${CMAKE_COMMAND}" ${configure_args})

# The package must have come from the fresh prefix.
file(STRINGS "${build}/CMakeCache.txt" pbm_dir_line REGEX "^pbm_DIR:")
string(REGEX REPLACE "^pbm_DIR:[A-Z]+=" "" pbm_dir "${pbm_dir_line}")
file(REAL_PATH "${prefix}" real_prefix)
file(REAL_PATH "${pbm_dir}" real_pbm_dir)
string(FIND "${real_pbm_dir}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "consumer: found pbm at '${pbm_dir}', not in the install prefix '${prefix}'")
endif()

run_step(build "${CMAKE_COMMAND}" --build "${build}" ${config_args})

if(CONFIG AND EXISTS "${build}/${CONFIG}/pbm_consumer")
  set(exe "${build}/${CONFIG}/pbm_consumer")
else()
  set(exe "${build}/pbm_consumer")
endif()
run_step(run "${exe}")
