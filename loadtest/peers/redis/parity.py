#!/usr/bin/env python3
"""parity.py - checks that the Redis + Lua peer decides exactly as nbad.

Asks a running nbad (through `nbactl decide --json`) and the peer in Redis
(checkin.lua, by EVALSHA or FCALL) for the same contacts and compares the
whole decisions: known, language, ruleset (name@version), and every
action's type, rule, params, message, reason and follow-up flag. Half of the
customers are platinum or valuable ones, so the recovery rules are
exercised; the others are drawn uniformly, with an unknown id among them.
Channels, touchpoints, cabins and picked languages are drawn per contact.

    parity.py --nbactl build/nbactl --nbad-port 7411 --redis-port 6379 \
              (--sha SHA | --function checkin) --customers-csv customers.csv [--count 200]

Prints "N decisions, M actions, K differ" and the first differences; exits 0
when none differ, 1 when some do, 2 on a usage or connection error.
"""
import argparse
import json
import random
import socket
import subprocess
import sys


class Redis:
    """The least RESP2 client that does the job."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()

    def read(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode()
        if kind == b"*":
            return [self.read() for _ in range(int(rest))]
        raise RuntimeError("not RESP2: %r" % line)


def from_peer(reply):
    """The peer's reply in the shape of nbactl's JSON decision."""
    return {
        "customer_id": reply[0],
        "known": bool(reply[1]),
        "language": reply[2],
        "ruleset": reply[3],
        "actions": [
            {
                "type": a[0],
                "rule_id": a[1],
                "message": a[2],
                "reason": a[3],
                "follow_up": bool(a[4]),
                "params": dict(zip(a[5::2], a[6::2])),
            }
            for a in reply[4:]
        ],
    }


def from_nbad(decision):
    """nbactl's JSON decision with proto3's left-out defaults put back, and
    the ruleset as name@version: what nbad may add after a '+' (which build
    of the file) is nothing the peer can know."""
    decision["ruleset"] = decision.get("ruleset", "").split("+")[0]
    decision.setdefault("known", False)
    decision.setdefault("actions", [])
    for a in decision["actions"]:
        for key, default in (("params", {}), ("message", ""), ("reason", ""), ("follow_up", False)):
            a.setdefault(key, default)
    return decision


def sample_customers(path, count, rng):
    ids, valuable = [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split(",")
        col_id, col_tier, col_pltv = (header.index(c) for c in ("customer_id", "tier", "predicted_ltv"))
        for line in f:
            fields = line.split(",")
            # names with quoted commas shift later columns: such rows are only sampled uniformly
            if len(fields) != len(header) or not fields[0].startswith(("C", "c")):
                continue
            ids.append(fields[col_id])
            try:
                if fields[col_tier] == "platinum" or float(fields[col_pltv]) >= 20000:
                    valuable.append(fields[col_id])
            except ValueError:
                pass
    picked = [rng.choice(valuable) for _ in range(count // 2)] if valuable else []
    picked += [rng.choice(ids) for _ in range(count - len(picked) - 1)]
    picked.append("CX0000001")  # no such customer
    return picked


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nbactl", required=True)
    ap.add_argument("--nbad-port", type=int, required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--sha")
    ap.add_argument("--function")
    ap.add_argument("--customers-csv", required=True)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if bool(args.sha) == bool(args.function):
        ap.error("give --sha or --function")
    head = ["EVALSHA", args.sha] if args.sha else ["FCALL", args.function]

    rng = random.Random(args.seed)
    try:
        redis = Redis(args.redis_port)
    except OSError as e:
        print("parity.py: cannot reach Redis on port %d: %s" % (args.redis_port, e), file=sys.stderr)
        return 2
    total = actions = differ = 0
    rules = {}
    for cid in sample_customers(args.customers_csv, args.count, rng):
        channel = rng.choice(["kiosk", "kiosk", "desk", "ivr", "web"])
        touchpoint = rng.choice(["checkin", "checkin", "checkin", "boarding"])
        cabin = rng.choice(["Y", "Y", "W", "J", ""])
        language = rng.choice(["", "", "", "it", "zh-TW", "de", "en-GB", "zh_hans"])
        cmd = [args.nbactl, "decide", "--port", str(args.nbad_port), "--customer", cid,
               "--channel", channel, "--touchpoint", touchpoint, "--json"]
        if cabin:
            cmd += ["--context", "cabin=" + cabin]
        if language:
            cmd += ["--language", language]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        if run.returncode != 0:
            print("parity.py: nbactl failed: %s" % run.stderr.strip(), file=sys.stderr)
            return 2
        want = from_nbad(json.loads(run.stdout)["decision"])
        got = from_peer(redis.call(*head, "2", "cust:" + cid, "inc:" + cid, cid, channel,
                                   touchpoint, cabin, language))
        total += 1
        actions += len(want["actions"])
        for a in want["actions"]:
            rules[a["rule_id"]] = rules.get(a["rule_id"], 0) + 1
        if got != want:
            differ += 1
            if differ <= 3:
                print("differs: %s %s %s cabin=%r language=%r" % (cid, channel, touchpoint, cabin, language))
                print("  nbad: " + json.dumps(want, ensure_ascii=False))
                print("  peer: " + json.dumps(got, ensure_ascii=False))
    by_rule = ", ".join("%s %d" % kv for kv in sorted(rules.items()))
    print("%d decisions, %d actions (%s), %d differ" % (total, actions, by_rule, differ))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
