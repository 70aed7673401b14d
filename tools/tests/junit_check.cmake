# Runs pbm-guard with --junit (and GITHUB_STEP_SUMMARY set), checks its exit code, validates the
# XML against the JUnit schema with xmllint and checks what the XML and the summary say.
#   cmake -DCOMMAND="a|b|c" -DEXPECT_CODE=3 -DXML=out.xml -DXSD=junit.xsd -DXMLLINT=/usr/bin/xmllint
#         -DSUMMARY=summary.md [-DEXPECT_XML="regex|regex"] [-DEXPECT_SUMMARY="regex|regex"]
#         -P junit_check.cmake
# "|" separates list items. The test fails when the XML is not valid against the schema.
string(REPLACE "|" ";" command "${COMMAND}")
file(REMOVE "${XML}" "${SUMMARY}")
# The summary is appended to, as GitHub's step summary file is: an earlier line must survive.
file(WRITE "${SUMMARY}" "earlier step\n")
set(ENV{GITHUB_STEP_SUMMARY} "${SUMMARY}")
execute_process(COMMAND ${command} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT "${code}" STREQUAL "${EXPECT_CODE}")
  message(FATAL_ERROR "exit code ${code}, expected ${EXPECT_CODE}: ${command}")
endif()
if(NOT EXISTS "${XML}")
  message(FATAL_ERROR "no JUnit file written: ${XML}")
endif()
execute_process(COMMAND ${XMLLINT} --noout --schema ${XSD} ${XML} RESULT_VARIABLE valid ERROR_VARIABLE why)
if(NOT valid EQUAL 0)
  message(FATAL_ERROR "${XML} is not valid against ${XSD} (xmllint ${valid}):\n${why}")
endif()
# expect_matches(FILE "regex|regex"): prints FILE and fails unless it matches every regex.
function(expect_matches file expected)
  file(READ "${file}" text)
  message("${text}")
  string(REPLACE "|" ";" patterns "${expected}")
  foreach(p IN LISTS patterns)
    if(NOT text MATCHES "${p}")
      message(FATAL_ERROR "${file} lacks /${p}/")
    endif()
  endforeach()
endfunction()
expect_matches("${XML}" "${EXPECT_XML}")
expect_matches("${SUMMARY}" "earlier step\n###|${EXPECT_SUMMARY}")
