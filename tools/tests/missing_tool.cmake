# Stands in for a test whose tool was not found at configure time:
#   cmake -DTOOL=xmllint -DPACKAGE=libxml2-utils -P missing_tool.cmake
# Fails (CI installs the tool with scripts/setup), or with PBM_ALLOW_MISSING_TOOLS=1 in the
# environment (gpu-check: its machine has no Debian packages) prints a SKIP line the test's
# SKIP_REGULAR_EXPRESSION turns into a skip.
if("$ENV{PBM_ALLOW_MISSING_TOOLS}" STREQUAL "1")
  message("SKIP: ${TOOL} not found (package ${PACKAGE}); PBM_ALLOW_MISSING_TOOLS=1")
else()
  message(FATAL_ERROR "${TOOL} not found at configure time: install ${PACKAGE} (scripts/setup does) and configure again")
endif()
