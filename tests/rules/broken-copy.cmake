# The shipped scenarios catch a changed rule: a copy of rules/ with one
# threshold changed must fail `nbactl rules test`, with a FAIL line.
# cmake -DNBACTL=... -DRULES=... -DWORK=... -P broken-copy.cmake
file(REMOVE_RECURSE ${WORK})
file(COPY ${RULES}/ DESTINATION ${WORK})
file(READ ${WORK}/airline-checkin.yaml text)
string(REPLACE "customer.predicted_ltv >= 20000" "customer.predicted_ltv >= 90000" broken "${text}")
if(broken STREQUAL text)
  message(FATAL_ERROR "the threshold to change is not in the shipped rules any more")
endif()
file(WRITE ${WORK}/airline-checkin.yaml "${broken}")
execute_process(COMMAND ${NBACTL} rules test ${WORK}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "nbactl rules test passed on rules with a changed threshold")
endif()
string(FIND "${out}" "  FAIL  " at)
if(at EQUAL -1)
  message(FATAL_ERROR "expected a FAIL line")
endif()

# A rule no scenario chooses fails the run too.
file(WRITE ${WORK}/airline-checkin.yaml "${text}")
file(READ ${WORK}/airline-checkin.yaml text)
string(REPLACE "\nrules:\n"
               "\nrules:\n  - id: untested\n    when: event.touchpoint == \"nowhere\"\n    then: [{ action: nothing }]\n\n"
               extra "${text}")
if(extra STREQUAL text)
  message(FATAL_ERROR "the place for an extra rule is not in the shipped rules any more")
endif()
file(WRITE ${WORK}/airline-checkin.yaml "${extra}")
execute_process(COMMAND ${NBACTL} rules test ${WORK}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
string(FIND "${out}" "not chosen by any scenario: untested" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "an untested rule must fail the run")
endif()
file(REMOVE_RECURSE ${WORK})
