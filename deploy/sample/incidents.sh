#!/usr/bin/env bash
# Prints the sample incidents.csv for the demo to stdout, with every
# occurred_at relative to the current time, so the scenario never ages out:
# Giulia Rossi (C1001) always has a broken seat-back screen on AZ611 from ten
# days ago, still open.
#
# Usage: deploy/sample/incidents.sh > incidents.csv
# Needs bash and GNU coreutils date only.
set -euo pipefail

now=$(date -u +%s)

# ago DAYS [HOURS]: the ISO 8601 UTC time that long before now.
ago() {
  date -u -d "@$((now - $1 * 86400 - ${2:-0} * 3600))" +%Y-%m-%dT%H:%M:%SZ
}

# Notes with commas, quotes or line breaks are quoted as RFC 4180 says:
# the whole field in double quotes, a quote inside it doubled.
cat <<CSV
incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note
INC-50001,C1001,ife_broken,3,$(ago 10 2),AZ611,0,"Seat 32C, screen dead for the whole 10-hour flight; passenger said ""unacceptable"""
INC-50002,C1001,delay,2,$(ago 410),AZ608,1,"Delayed 3 h at JFK, meal voucher given"
INC-50003,C1003,delay,3,$(ago 6 5),AZ203,0,"Missed connection at FCO, rebooked on the next day's flight"
INC-50004,C1003,complaint,2,$(ago 45),,1,Call centre wait of 50 minutes
INC-50005,C1004,lost_baggage,4,$(ago 21),AZ758,0,"Bag tagged to TPE, traced to BKK.
Still not delivered."
INC-50006,C1005,downgrade,3,$(ago 33),AZ790,1,"Downgraded from J to W, fare difference refunded"
INC-50007,C1006,delay,5,$(ago 8 1),AZ766,0,Flight cancelled; overnight in a hotel
INC-50008,C1008,complaint,1,$(ago 200),AZ433,1,
INC-50009,C1009,delay,2,$(ago 2 3),AZ319,0,
INC-50010,C1010,lost_baggage,3,$(ago 60),AZ062,1,"Delivered to the hotel, 2 days late"
INC-50011,C1011,ife_broken,2,$(ago 900),AZ785,0,Old and never followed up
INC-50012,C1012,ife_broken,1,$(ago 14),AZ1463,1,"Headphone socket broken; swapped seat"
INC-50013,C1017,downgrade,4,$(ago 3 6),AZ347,0,"Overbooked in J, moved to Y; asked for ""a proper apology"""
INC-50014,C1019,delay,2,$(ago 120),AZ787,1,
INC-50015,C1021,lost_baggage,3,$(ago 12),AZ794,0,"Golf clubs missing, claim PVG-1184"
INC-50016,C1028,ife_broken,3,$(ago 25),AZ609,1,"Wi-Fi and screen both down, 15,000 miles credited"
INC-50017,C1030,complaint,2,$(ago 400),,1,Rude staff at the transfer desk
CSV
