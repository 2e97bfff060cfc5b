#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.
# The output is committed; run this again after changing it (or the proto,
# the rule language or the CSV contract) and commit the result.
#
# Usage: tests/fuzz/make-corpus.sh
#
# Requests are encoded here by hand as protobuf (proto/nba.proto) so the
# script needs nothing but bash: every value is built as hex text, then
# written out as bytes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$here/corpus

# ---- protobuf, as hex text
hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
varint() {
  local n=$1 s=''
  while ((n >= 128)); do
    s+=$(printf '%02x' $(((n & 127) | 128)))
    n=$((n >> 7))
  done
  printf '%s%02x' "$s" "$n"
}
# field number, value: a varint field
fint() { printf '%s%s' "$(varint $(($1 << 3)))" "$(varint "$2")"; }
# field number, hex bytes: a length-delimited field (string, bytes, message)
fbytes() { printf '%s%s%s' "$(varint $(($1 << 3 | 2)))" "$(varint $((${#2} / 2)))" "$2"; }
# field number, text
fstr() { fbytes "$1" "$(hex "$2")"; }
# a frame: the 4-byte big-endian length, then the body
frame() { printf '%08x%s' $((${#1} / 2)) "$1"; }
# file name, hex bytes
emit() { printf "$(printf '%s' "$2" | sed 's/../\\x&/g')" >"$1"; }

# ContactEvent: customer_id channel touchpoint occurred_at_ms [key=value...]
contact() {
  local h
  h=$(fstr 1 "$1")
  if [ "$2" -ne 0 ]; then h+=$(fint 2 "$2"); fi
  h+=$(fstr 3 "$3")
  if [ "$4" -ne 0 ]; then h+=$(fint 4 "$4"); fi
  shift 4
  local kv
  for kv in "$@"; do
    case $kv in
      location=*) h+=$(fstr 5 "${kv#location=}") ;;
      language=*) h+=$(fstr 6 "${kv#language=}") ;;
      *) h+=$(fbytes 7 "$(fstr 1 "${kv%%=*}")$(fstr 2 "${kv#*=}")") ;;
    esac
  done
  printf '%s' "$h"
}
# Request with a contact event: id, then contact's arguments
req_contact() {
  local id=$1
  shift
  printf '%s%s' "$(fint 1 "$id")" "$(fbytes 2 "$(contact "$@")")"
}
req_ping() { printf '%s%s' "$(fint 1 "$1")" "$(fbytes 3 '')"; }

DESK=1 KIOSK=2 IVR=3 WEB=4 MOBILE=5 CALL_CENTER=6
NOW=1795168800000 # 2026-11-20T10:00:00Z, the time the fuzz store's incidents are relative to

# Empties corpus directory $1 of the seeds written here, but keeps the
# inputs that fuzzing found and `-merge=1` added (named by their SHA-1):
# they reach code no seed does.
fresh() {
  mkdir -p "$1"
  find "$1" -maxdepth 1 -type f -regextype posix-extended ! -regex '.*/[0-9a-f]{40}' -delete
}

# ---- request streams: fuzz_frame and fuzz_request share them
requests() {
  local d=$1
  fresh "$d"
  emit "$d/ping" "$(frame "$(req_ping 1)")"
  emit "$d/ping-id0" "$(frame "$(fbytes 3 '')")"
  emit "$d/empty-body" "$(frame '')"
  emit "$d/upgrade-kiosk" \
    "$(frame "$(req_contact 7 C1001 $KIOSK checkin $NOW cabin=Y flight=AZ610 location=FCO-T1-K12)")"
  emit "$d/upgrade-desk-now" "$(frame "$(req_contact 8 C1001 $DESK checkin 0 cabin=W)")"
  emit "$d/apology-ivr-zh" \
    "$(frame "$(req_contact 9 C1030 $IVR checkin $NOW language=zh-TW cabin=J)")"
  emit "$d/language-alias" "$(frame "$(req_contact 10 C1040 $WEB checkin $NOW)")"
  emit "$d/unknown-customer" "$(frame "$(req_contact 11 C9999 $MOBILE boarding $NOW)")"
  emit "$d/no-channel" "$(frame "$(req_contact 12 C2002 0 checkin $NOW language=it-IT)")"
  emit "$d/call-center" \
    "$(frame "$(req_contact 13 C1001 $CALL_CENTER call $NOW seat=32C cabin=Y flight=AZ611)")"
  emit "$d/empty-customer" "$(frame "$(req_contact 14 '' $KIOSK checkin $NOW)")"
  emit "$d/big-id" "$(frame "08ffffffffffffffffff01$(fbytes 2 "$(contact C1001 $KIOSK checkin $NOW)")")"
  emit "$d/pipelined" "$(frame "$(req_ping 1)")$(frame "$(req_contact 2 C1001 $KIOSK checkin \
    $NOW cabin=Y)")$(frame "$(req_contact 3 C1030 $DESK checkin $NOW)")$(frame "$(req_ping 4)")"
  # the operations requests: status, explain, reload
  emit "$d/status" "$(frame "$(fint 1 20)$(fbytes 4 '')")"
  emit "$d/explain" \
    "$(frame "$(fint 1 21)$(fbytes 5 "$(fbytes 1 "$(contact C1001 $KIOSK checkin $NOW cabin=Y)")")")"
  emit "$d/reload" "$(frame "$(fint 1 22)$(fbytes 6 '')")"
  emit "$d/explain-no-contact" "$(frame "$(fint 1 25)$(fbytes 5 '')")"
  # the customer service system: an incident reported, then resolved; a
  # report without its incident
  local inc
  inc=$(fstr 1 INC-7)$(fstr 2 C1001)$(fstr 3 delay)$(fint 4 3)$(fint 5 $((NOW - 7200000)))
  inc+=$(fstr 6 AZ610)$(fstr 8 "2 h late")
  emit "$d/report-incident" "$(frame "$(fint 1 26)$(fbytes 7 "$(fbytes 1 "$inc")")")"
  emit "$d/report-then-decide" "$(frame "$(fint 1 27)$(fbytes 7 "$(fbytes 1 "$inc")")")$(frame \
    "$(req_contact 28 C1001 $KIOSK checkin $NOW cabin=Y)")"
  emit "$d/report-no-incident" "$(frame "$(fint 1 29)$(fbytes 7 '')")"
  emit "$d/resolve-incident" \
    "$(frame "$(fint 1 30)$(fbytes 8 "$(fstr 1 C1001)$(fstr 2 INC-1)$(fint 3 $NOW)")")"
  # an unknown field, and a negative time (ten bytes of varint)
  emit "$d/unknown-field" "$(frame "$(fint 1 23)$(fstr 15 future)$(fbytes 3 '')")"
  emit "$d/negative-time" \
    "$(frame "$(fint 1 24)$(fbytes 2 "$(fstr 1 C1001)$(fint 2 2)20ffffffffffffffffff01")")"
  # what ends a connection: a body that does not decode, a frame too large,
  # a stream that stops in the middle of a frame
  emit "$d/bad-body" "$(frame "$(req_ping 1)")$(frame 0aff)"
  emit "$d/too-large" "$(frame "$(req_ping 1)")00010001"
  emit "$d/truncated" "$(frame "$(req_ping 1)")0000001008"
}
requests "$out/fuzz_frame"
requests "$out/fuzz_request"

# ---- rule files: fuzz_rules
d=$out/fuzz_rules
fresh "$d"
cp "$root/rules/airline-checkin.yaml" "$d/airline-checkin.yaml"
HEAD='ruleset: t
version: 1
languages: [en, it, zh-Hant, zh-Hans]
default_language: en
'
cat >"$d/arbitration.yaml" <<EOF
${HEAD}max_actions: 3
rules:
  - {id: low, priority: 1, when: 'true', then: [{action: low}]}
  - {id: g-a, priority: 5, group: g, when: 'true', then: [{action: ga}]}
  - {id: high, priority: 10, when: 'true', then: [{action: high}]}
  - {id: g-b, priority: 7, group: g, when: 'false', then: [{action: gb}]}
  - {id: only, when: 'true', then: [{action: v, channels: [desk, kiosk]}, {action: w, channels: ivr}]}
EOF
cat >"$d/language.yaml" <<EOF
${HEAD}language_aliases: { zh-TW: zh-Hant, zh-CN: zh-Hans }
agent_language: it
rules:
  - id: switch
    when: customer.known and event.language == "" and speaks(customer.language)
    then:
      - action: set_language
        language: "{{customer.language}}"
        say: hello
        params: { tier: "{{customer.tier}}", at: "{{ event.location }}" }
messages:
  hello:
    en: { default: "Hello {{customer.name}}", ivr: "Hi", desk: "In {{decision.language | names}}" }
    it: "Ciao {{customer.name}}"
    zh-Hant: "您好，{{customer.name}}"
labels:
  names:
    en: { en: English, it: inglese }
    it: { en: Italian, it: italiano }
EOF
cat >"$d/incidents.yaml" <<EOF
${HEAD}attributes: [segment, miles_ytd]
rules:
  - id: delays
    priority: 20
    when: count(incidents, kind == "delay" and age < 30d) >= 2 or any(incidents, severity >= 4)
    reason: why
    then: [{action: voucher, follow_up: true, say: sorry}]
  - id: corporate
    when: >
      customer.segment == "corporate" and customer.miles_ytd > 50_000
      and not (event.channel in ["ivr", "web"]) and starts_with(lower(event.location), "fco")
      and contains(customer.name, "a") and event.context.cabin not in ["F"]
      and any(incidents, open and age < 2w and flight == event.context.flight)
    then: [{action: lounge, params: { kind: "{{incident.kind | kinds}}" }}]
messages:
  sorry:
    en: "Sorry for {{incident.kind | kinds}} on {{incident.occurred_at}} (severity {{incident.severity}})."
  why:
    en: |
      Incident {{incident.id}}: {{incident.note}}, flight {{incident.flight}}.
labels:
  kinds:
    delay: { en: the delay, it: il ritardo }
    "5": { en: very serious }
EOF
cat >"$d/durations.yaml" <<EOF
${HEAD}rules:
  - id: d
    when: any(incidents, age >= 6h and age < 500ms or age <= 45s or age != 30m or age in [1d, 2w])
    then: [{action: a}]
  - id: n
    when: customer.predicted_ltv >= -3.5 and customer.lifetime_value in [1, 2.5, 20_000] or not customer.known
    then: [{action: b}]
  - id: s
    when: 'event.touchpoint < "m" and event.customer_id != "x\\n\\t\\"" and event.channel == "desk"'
    then: [{action: c}]
EOF
cat >"$d/tables.yaml" <<EOF
${HEAD}attributes:
  segment: text
  miles_ytd: number
  member_since: time
  newsletter: bool
  tags: any
context:
  cabin: text
  seat: text
  party_size: number
  departs: time
  lounge_open: bool
channels:
  ivr: { cannot: [meal_voucher] }
  mobile: { max_actions: 1 }
groups:
  compensation: One compensation per contact
rules:
  - id: late
    group: compensation
    when: >
      has(event.context.seat) or event.time_of_day >= 22h or event.time < 2026-11-01T08:30:00Z
      or age(customer.member_since) > 52w and days_since(event.context.departs) < 2
      or sum(incidents, severity, open) > 4 or latest(incidents, kind) == "delay"
      or min(incidents, occurred_at) > 2026-01-01 or event.context.lounge_open
      or customer.newsletter and customer.tags == 7 and event.context.party_size >= 2
    then: [{action: meal_voucher, params: { at: "{{event.time}} {{event.time_of_day}}" }}]
tables:
  - id: miles
    priority: 30
    policy: first
    when: event.touchpoint == "checkin"
    group: compensation
    columns:
      tier: { value: customer.tier, values: [platinum, gold, silver, none] }
      severity: { value: "max(incidents, severity, open and age < 90d)", range: [1, 5] }
      wait: sum(incidents, age, kind == "delay")
    rows:
      - { tier: platinum, severity: ">= 3", then: [{ action: miles, params: { miles: "20000" } }] }
      - { tier: [gold, silver], severity: 1..2, wait: "< 1h30m", then: [{ action: miles }] }
      - { id: nothing, tier: "*", then: [] }
  - id: prio
    policy: priority
    columns: { lang: customer.language }
    rows:
      - { lang: it, priority: 2, then: [{ action: a }] }
      - { lang: it, priority: 2, then: [{ action: b }] }
EOF
printf '%srules:\n  - {id: main, when: "true", then: [{action: a, say: hi}]}\nmessages:\n  hi: {en: "Hi {{customer.name}}"}\n\377rules:\n  - {id: part, priority: 5, when: customer.known, then: [{action: b, say: hi}]}\nmessages:\n  bye: {en: "Bye"}\n' \
  "$HEAD" >"$d/two-files"
# files that must be refused, each a different way
printf '%srulez: []\n' "$HEAD" >"$d/error-unknown-key.yaml"
printf '%srules:\n  - id: r\n    when: customer.tier = "gold" && (1 < 2 < 3\n    then: [{action: a}]\n' \
  "$HEAD" >"$d/error-condition.yaml"
printf '%srules: []\nmessages:\n  hello:\n    en: "Hi {{customer.name"\n    zh-Hant: "您好，{{customer.nmae}}"\n' \
  "$HEAD" >"$d/error-placeholder.yaml"
printf '%srules:\n  - {id: r, when: "true", then: &t [{action: a, say: hi}]}\n  - {id: s, when: "false", then: *t}\nmessages:\n  hi: &m {en: "Hi"}\n  bye: *m\n' \
  "$HEAD" >"$d/anchors.yaml"
printf '%srules:\n  - &r {id: r, when: "true", then: [{action: a}]}\n  - *r\n---\nfoo: 1\n' \
  "$HEAD" >"$d/error-two-documents.yaml"
printf 'ruleset: t\r\nversion: 1\r\nlanguages: [en]\r\ndefault_language: en\r\nrules:\r\n  - id: r\r\n    when: >\r\n      customer.known\r\n    then: [{action: a}]\r\n' \
  >"$d/crlf.yaml"

# ---- CSV: fuzz_csv (customers, then a 0xFF byte, then incidents)
d=$out/fuzz_csv
fresh "$d"
customers='customer_id,name,tier,lifetime_value,predicted_ltv,language,home_airport,miles
C1001,Giulia Rossi,platinum,86500.00,48000,it,FCO,120000
C1030,陳美玲,gold,30500,41000,zh-Hant,TPE,-3.5e2
C3,"Low, Tom ""Tommy""",none,0,120,en,,
'
incidents='incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note
INC-1,C1001,ife_broken,3,2026-11-12T08:30:00Z,AZ611,0,"Seat 32C, screen dead
for the whole flight"
INC-2,C1030,delay,2,2026-11-01,BR87,1,
INC-3,C1001,lost_baggage,5,2026-10-01T08:30:00.250+02:00,,0,x
'
printf '%s' "$customers" >"$d/customers-only"
printf '%s\377%s' "$customers" "$incidents" >"$d/customers-incidents"
printf '\357\273\277%s\377%s' "${customers//$'\n'/$'\r\n'}" "${incidents//$'\n'/$'\r\n'}" \
  >"$d/bom-crlf"
printf '%s\377%s' "$customers" "${incidents/C1001,lost/C404,lost}" >"$d/unknown-customer"
printf '%sC1001,Again,none,1,2,en,,\n' "$customers" >"$d/duplicate"
printf 'language,predicted_ltv,customer_id,lifetime_value,tier,name\nit,1_000,C1,1,x,y\n' \
  >"$d/bad-number"
printf 'customer_id,name,tier,lifetime_value,predicted_ltv,language\nC1,Ren\351,x,1,2,fr\n' \
  >"$d/latin1"
printf 'customer_id,name\n"C1,unterminated\n' >"$d/unterminated"
printf 'a,b\r\nc"d,e\r\n' >"$d/quote-in-field"
printf '%s\377%s' "$customers" 'incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note
INC-9,C1001,delay,9,2026-02-30T25:00:00Z,AZ1,2,
' >"$d/bad-incident"
head -n 12 "$root/deploy/sample/customers.csv" >"$d/sample-customers"

# ---- stored records: fuzz_record (a byte picking the message, then its bytes)
d=$out/fuzz_record
fresh "$d"
attr() { fbytes 7 "$(fstr 1 "$1")$(fstr 2 "$2")"; }
customer=$(fstr 1 C1001)$(fstr 2 "Giulia Rossi")$(fstr 3 platinum)
customer+=2100000000401ef540   # 4: lifetime_value 86500.0 (a double, little-endian)
customer+=$(fstr 6 it)$(attr home_airport FCO)$(attr birth_date 1985-07-06)
emit "$d/customer" "00$customer"
incident=$(fstr 1 INC-1)$(fstr 2 C1001)$(fstr 3 ife_broken)$(fint 4 3)$(fint 5 1794904200000)
incident+=$(fstr 6 AZ611)$(fint 7 1)$(fstr 8 "screen dead")$(fstr 9 upgrade)$(fint 10 1794904300000)
emit "$d/incident" "01$incident"
pair() { fbytes "$1" "$(fstr 1 "$2")$(fstr 2 "$3")"; }
history=$(fstr 1 C1001)$(fint 2 1794904300000)$(fint 3 2)$(fstr 4 checkin)$(fstr 5 upgrade)
history+=$(fstr 6 recovery-upgrade)$(fstr 7 INC-1)$(pair 8 cabin F)$(pair 9 flight AZ611)
history+=$(pair 9 cabin Y)
emit "$d/history" "02$history"
emit "$d/empty-history" "02"

du -sh "$out"
