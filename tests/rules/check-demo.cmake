# `nbactl rules check` on a file with a typo, a type error and a shadowed
# rule prints all three with file:line:col and exits non-zero.
# cmake -DNBACTL=... -DFILE=... -P check-demo.cmake
execute_process(COMMAND ${NBACTL} rules check ${FILE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 65)
  message(FATAL_ERROR "expected exit status 65, got ${rc}")
endif()
foreach(want
    "check-demo.yaml:22:9: warning: rule 'upgrade-business' is shadowed by 'upgrade-first'"
    "check-demo.yaml:32:11: error: unknown customer field 'teir'"
    "hint: did you mean 'tier'"
    "check-demo.yaml:37:34: error: cannot compare a number with a text"
    "2 errors, 1 warning")
  string(FIND "${out}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected in the output: ${want}")
  endif()
endforeach()
