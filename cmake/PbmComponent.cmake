# What pbm's component libraries (telemetry/, exporters/) share. Included from their CMakeLists.
include_guard(GLOBAL)

# pbm_component_feature(PBM_WITH_<X> TARGET): resolves the tri-state option (pbm_feature_resolve,
# cmake/PbmOptions.cmake) with "dependency found" meaning TARGET exists, and sets PBM_HAVE_<X> both
# in the component's scope and in the top level's (package config, tests, the configure summary).
# A macro, so that PARENT_SCOPE is the component's parent.
macro(pbm_component_feature option dependency)
  if(TARGET ${dependency})
    pbm_feature_resolve(${option} TRUE)
  else()
    pbm_feature_resolve(${option} FALSE)
  endif()
  string(REPLACE "PBM_WITH_" "PBM_HAVE_" _pbm_have "${option}")
  set(${_pbm_have} ${${_pbm_have}} PARENT_SCOPE)
endmacro()

# pbm_component(NAME [HAVE_VARIABLE]): what every pbm component library (pbm_NAME, already added)
# shares: the alias pbm::NAME, export and output names, its public include/ folder (build and
# install trees), C++17, warnings, and the install rules into pbmTargets. HAVE_VARIABLE (e.g.
# PBM_HAVE_CUPTI) is also recorded as a target property of that name, for the component's tests.
function(pbm_component name)
  set(target pbm_${name})
  if(ARGC GREATER 1)
    set_target_properties(${target} PROPERTIES ${ARGV1} "${${ARGV1}}")
  endif()
  add_library(pbm::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME ${target})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${target} PUBLIC cxx_std_17)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  install(TARGETS ${target} EXPORT pbmTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
