# nbactl explain and nbactl rules simulate against a real database: load a
# few customers, explain the blueprint passenger's decision, and replay
# contact events against the shipped rules and a changed copy.
# cmake -DNBACTL=... -DRULES=... -DWORK=... -P simulate-explain.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
file(WRITE ${WORK}/customers.csv
"customer_id,name,tier,lifetime_value,predicted_ltv,language,home_airport
C1001,Giulia Rossi,platinum,86500,48000,it,FCO
C1002,Tom Baker,none,180,350,en,LGW
C1003,James Whitfield,gold,32400,27500,en,LHR
")
file(WRITE ${WORK}/incidents.csv
"incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note
INC-1,C1001,ife_broken,3,2026-11-12T08:30:00Z,AZ611,0,screen dead
INC-3,C1003,delay,3,2026-11-22T04:00:00Z,AZ203,0,
")
execute_process(COMMAND ${NBACTL} load --db ${WORK}/db --customers ${WORK}/customers.csv
                        --incidents ${WORK}/incidents.csv RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nbactl load failed")
endif()

function(expect out want)
  string(FIND "${out}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected in the output: ${want}")
  endif()
endfunction()

# Why the upgrade fired, and why no other cabin change did.
execute_process(COMMAND ${NBACTL} explain --db ${WORK}/db --rules ${RULES}/airline-checkin.yaml
                        --customer C1001 --channel kiosk --touchpoint checkin
                        --context cabin=Y,free_cabins=W --at 2026-11-22T10:00:00Z
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nbactl explain failed")
endif()
expect("${out}" "recovery-upgrade: held, chosen")
expect("${out}" "= true (INC-1)")
expect("${out}" "loyalty-upgrade: held, dropped: exclusive group 'cabin-change' went to 'recovery-upgrade'")
expect("${out}" "exit-row-seat: not held")
expect("${out}" "1. upgrade   (rule recovery-upgrade)")

execute_process(COMMAND ${NBACTL} explain --db ${WORK}/db --rules ${RULES}/airline-checkin.yaml
                        --customer C1001 --channel kiosk --touchpoint checkin --json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out)
expect("${out}" "\"outcome\": \"not held\"")

# Replay: the same rules change nothing; a raised threshold changes one.
file(WRITE ${WORK}/events.jsonl
"# contact events, one JSON object per line
{\"customer_id\": \"C1001\", \"channel\": \"kiosk\", \"touchpoint\": \"checkin\", \"context\": {\"cabin\": \"Y\"}, \"at\": \"2026-11-22T10:00:00Z\"}
{\"customer_id\": \"C1002\", \"channel\": \"desk\", \"touchpoint\": \"checkin\", \"context\": {\"cabin\": \"Y\"}, \"at\": \"2026-11-22T10:00:00Z\"}
{\"customer_id\": \"C1003\", \"channel\": \"ivr\", \"touchpoint\": \"checkin\", \"context\": {\"cabin\": \"Y\"}, \"at\": \"2026-11-22T10:00:00Z\"}
{\"customer_id\": \"C9999\", \"channel\": \"kiosk\", \"touchpoint\": \"checkin\", \"at\": \"2026-11-22T10:00:00Z\"}
")
execute_process(COMMAND ${NBACTL} rules simulate --rules ${RULES}/airline-checkin.yaml
                        --against ${RULES}/airline-checkin.yaml --events ${WORK}/events.jsonl
                        --db ${WORK}/db
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
expect("${out}" "decisions that change: 0 of 4")
file(READ ${RULES}/airline-checkin.yaml text)
string(REPLACE "customer.predicted_ltv >= 20000" "customer.predicted_ltv >= 30000" changed "${text}")
string(REPLACE "version: 1" "version: 2" changed "${changed}")
file(WRITE ${WORK}/new.yaml "${changed}")
execute_process(COMMAND ${NBACTL} rules simulate --rules ${WORK}/new.yaml
                        --against ${RULES}/airline-checkin.yaml --events ${WORK}/events.jsonl
                        --db ${WORK}/db
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nbactl rules simulate failed")
endif()
expect("${out}" "decisions that change: 1 of 4")
expect("${out}" "1 of them for passengers nbad does not know")
string(REGEX MATCH "\n  upgrade +2 +1 +-1\n" line "${out}")
if(NOT line)
  message(FATAL_ERROR "expected the upgrade count to go from 2 to 1")
endif()
expect("${out}" "events.jsonl:4  C1003  ivr checkin")
expect("${out}" "new:     set_language, apology_letter, goodwill_miles, greet")

# Events that name the passenger by a lookup key, as a kiosk that scanned a
# booking may send them: resolved in the database like nbad resolves them.
file(WRITE ${WORK}/keyed.csv
"customer_id,name,tier,lifetime_value,predicted_ltv,language,booking_ref
C1001,Giulia Rossi,platinum,86500,48000,it,BK1001
C1003,James Whitfield,gold,32400,27500,en,BK1003
")
execute_process(COMMAND ${NBACTL} load --db ${WORK}/dbk --customers ${WORK}/keyed.csv
                        --incidents ${WORK}/incidents.csv --keys booking_ref RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nbactl load --keys failed")
endif()
file(WRITE ${WORK}/keyed.jsonl
"{\"key_name\": \"booking_ref\", \"key_value\": \"BK1001\", \"channel\": \"kiosk\", \"touchpoint\": \"checkin\", \"context\": {\"cabin\": \"Y\"}, \"at\": \"2026-11-22T10:00:00Z\"}
{\"key_name\": \"booking_ref\", \"key_value\": \"BK1003\", \"channel\": \"ivr\", \"touchpoint\": \"checkin\", \"context\": {\"cabin\": \"Y\"}, \"at\": \"2026-11-22T10:00:00Z\"}
{\"key_name\": \"booking_ref\", \"key_value\": \"NOSUCH\", \"channel\": \"ivr\", \"touchpoint\": \"checkin\", \"at\": \"2026-11-22T10:00:00Z\"}
{\"key_name\": \"booking_ref\", \"channel\": \"ivr\", \"touchpoint\": \"checkin\"}
")
execute_process(COMMAND ${NBACTL} rules simulate --rules ${WORK}/new.yaml
                        --against ${RULES}/airline-checkin.yaml --events ${WORK}/keyed.jsonl
                        --db ${WORK}/dbk
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
expect("${out}" "decisions that change: 1 of 3")
expect("${out}" "keyed.jsonl:2  C1003  ivr checkin")
expect("${err}" "keyed.jsonl:4: \"key_name\" and \"key_value\" go together")
file(REMOVE_RECURSE ${WORK})
