#!/usr/bin/env python3
"""The contract, checked from outside: a client written in Python from
proto/nba.proto alone (no nbad code), with data loaded by `nbactl load` from
contract-shaped CSVs, talking to the real nbad over loopback.

Run by ctest with NBAD_BIN, NBACTL_BIN and NBA_SOURCE_DIR set; needs protoc
and the python3-protobuf package (deploy/install-deps.sh installs both).
"""
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from nbatest import (NBACTL, NBAD, SOURCE, WORK, Conn, contact, free_port, iso,  # noqa: E402
                     nba)


class Contract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(WORK, "customers.csv"), "w", encoding="utf-8") as f:
            f.write("customer_id,name,tier,lifetime_value,predicted_ltv,language,home_airport\n"
                    "VIP-1,Giulia Rossi,platinum,90000,60000,it,FCO\n"
                    "VIP-2,Giulia Rossi,platinum,90000,60000,it,FCO\n"
                    "VIP-3,Giulia Rossi,platinum,90000,60000,it,FCO\n"
                    "VIP-4,Giulia Rossi,platinum,90000,60000,it,FCO\n"
                    "LOW-1,Sam Smith,none,150,200,en,MAN\n"
                    "ZH-1,陳美玲,gold,20000,30000,zh-Hant,TPE\n")
        with open(os.path.join(WORK, "incidents.csv"), "w", encoding="utf-8") as f:
            f.write("incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note\n"
                    f"INC-9,VIP-1,ife_broken,3,{iso(10)},AZ611,0,\"Seat 3A, no screen\"\n"
                    f"INC-8,VIP-2,ife_broken,3,{iso(10)},AZ611,0,\"Seat 3A, no screen\"\n"
                    f"INC-7,VIP-3,ife_broken,3,{iso(10)},AZ611,0,\"Seat 3A, no screen\"\n"
                    f"INC-6,VIP-4,ife_broken,3,{iso(10)},AZ611,0,\"Seat 3A, no screen\"\n")
        db = os.path.join(WORK, "db")
        subprocess.run([NBACTL, "load", "--db", db,
                        "--customers", os.path.join(WORK, "customers.csv"),
                        "--incidents", os.path.join(WORK, "incidents.csv")],
                       check=True, capture_output=True)
        cls.port = free_port()
        cls.log = open(os.path.join(WORK, "nbad.log"), "w")
        cls.nbad = subprocess.Popen([NBAD, "--db", db, "--rules",
                                     os.path.join(SOURCE, "rules", "airline-checkin.yaml"),
                                     "--port", str(cls.port), "--threads", "2"],
                                    stderr=cls.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                c = Conn(cls.port)
                c.call(nba.Request(id=1, ping=nba.Ping()))
                c.close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nbad did not come up")

    @classmethod
    def tearDownClass(cls):
        cls.nbad.send_signal(signal.SIGTERM)
        code = cls.nbad.wait(timeout=10)
        cls.log.close()
        shutil.rmtree(WORK, ignore_errors=True)
        assert code == 0, f"nbad exited with {code} on SIGTERM"

    def test_valuable_passenger_same_treatment_on_every_channel(self):
        # Three passengers alike, each meeting nbad first on another channel
        # (the same passenger going on to a second channel is told the
        # upgrade is done: tests/recovery).
        c = Conn(self.port)
        kinds, upgrade_messages = [], []
        for i, (channel, vip) in enumerate([(nba.KIOSK, "VIP-1"), (nba.DESK, "VIP-2"),
                                             (nba.IVR, "VIP-3")]):
            r = c.call(contact(100 + i, vip, channel))
            self.assertEqual(r.id, 100 + i)
            self.assertEqual(r.WhichOneof("body"), "decision")
            d = r.decision
            self.assertTrue(d.known)
            self.assertEqual(d.language, "it")
            self.assertIn("@", d.ruleset)
            by_type = {a.type: a for a in d.actions}
            self.assertIn("upgrade", by_type)
            self.assertIn("apology_letter", by_type)
            self.assertEqual(by_type["upgrade"].params["cabin"], "F")
            self.assertTrue(by_type["apology_letter"].follow_up)
            self.assertFalse(by_type["upgrade"].follow_up)
            for a in d.actions:
                self.assertTrue(a.message, f"{a.type} has no message")
            kinds.append([a.type for a in d.actions])
            upgrade_messages.append(by_type["upgrade"].message)
        self.assertEqual(kinds[0], kinds[1])
        self.assertEqual(kinds[1], kinds[2])
        self.assertEqual(len(set(upgrade_messages)), 3, "messages should differ per channel")
        c.close()

    def test_low_value_passenger_gets_no_recovery(self):
        c = Conn(self.port)
        d = c.call(contact(200, "LOW-1", nba.KIOSK)).decision
        self.assertTrue(d.known)
        types = [a.type for a in d.actions]
        self.assertNotIn("upgrade", types)
        self.assertNotIn("apology_letter", types)
        c.close()

    def test_chinese_traditional(self):
        c = Conn(self.port)
        d = c.call(contact(250, "ZH-1", nba.KIOSK)).decision
        self.assertEqual(d.language, "zh-Hant")
        self.assertTrue(any("陳美玲" in a.message for a in d.actions))
        c.close()

    def test_unknown_customer_is_a_decision(self):
        c = Conn(self.port)
        r = c.call(contact(300, "NO-SUCH-ID", nba.IVR))
        self.assertEqual(r.WhichOneof("body"), "decision")
        self.assertFalse(r.decision.known)
        c.close()

    def test_oversized_frame_closes_only_that_connection(self):
        bad, good = Conn(self.port), Conn(self.port)
        bad.send_raw(struct.pack(">I", 1 << 20) + b"x" * 1024)
        r = bad.recv()
        self.assertEqual(r.WhichOneof("body"), "error")
        self.assertTrue(r.error.code)
        with self.assertRaises((EOFError, ConnectionResetError)):
            bad.recv()
        bad.close()
        d = good.call(contact(400, "VIP-4", nba.DESK)).decision
        self.assertIn("upgrade", [a.type for a in d.actions])
        good.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
