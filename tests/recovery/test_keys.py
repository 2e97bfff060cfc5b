#!/usr/bin/env python3
"""Lookup keys from outside: customers loaded with `nbactl load --keys
booking_ref,loyalty_card`, a kiosk that knows the passenger only by the
booking reference it scanned, and the service-recovery loop going on under
the passenger's customer_id whichever identifier the next contact point
has: the desk the customer id, the IVR the loyalty card. An unknown key is
an unknown customer; an upsert moving a booking to another passenger is
seen at once; a booking reference given to two passengers fails the load,
naming both lines.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from nbatest import (NBACTL, RULES, WORK, Conn, Daemon, action_types, contact, iso,  # noqa: E402
                     nba, nbactl_json)

HEADER = "customer_id,name,tier,lifetime_value,predicted_ltv,language,booking_ref,loyalty_card\n"
KEYS = "booking_ref,loyalty_card"


def write_customers(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER)
        f.writelines(",".join(map(str, row)) + "\n" for row in rows)


def by_key(req_id, name, value, channel, flight="AZ610"):
    """A contact event that names the passenger by a lookup key only."""
    req = contact(req_id, "", channel, flight=flight)
    req.contact.key_name = name
    req.contact.key_value = value
    return req


def nbactl(*args):
    return subprocess.run([NBACTL, *args], capture_output=True, text=True)


class LookupKeys(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(WORK, "keys")
        os.makedirs(cls.dir)
        cls.customers = os.path.join(cls.dir, "customers.csv")
        cls.incidents = os.path.join(cls.dir, "incidents.csv")
        write_customers(cls.customers, [
            ("VIP-1", "Giulia Rossi", "platinum", 90000, 60000, "it", '"X7K2QP; B3RT9Z"',
             "LC-1001"),
            ("VIP-2", "Marco Bianchi", "gold", 50000, 45000, "it", "Q1W2E3", "LC-1002"),
            ("VIP-3", "Ana Lima", "gold", 50000, 45000, "en", "M0V3ME", "LC-1003"),
            ("LOW-1", "Sam Smith", "none", 150, 200, "en", "", "LC-1004"),
        ])
        with open(cls.incidents, "w", encoding="utf-8") as f:
            f.write("incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note\n")
            f.write(f"INC-1,VIP-1,ife_broken,3,{iso(10)},AZ611,0,no screen\n")
            f.write(f"INC-2,VIP-2,delay,3,{iso(5)},AZ612,0,\n")
            f.write(f"INC-3,VIP-3,lost_baggage,4,{iso(3)},AZ613,0,\n")
        cls.db = os.path.join(cls.dir, "db")
        out = nbactl("load", "--db", cls.db, "--customers", cls.customers, "--incidents",
                     cls.incidents, "--keys", KEYS)
        assert out.returncode == 0, out.stderr
        assert "lookup keys" in out.stdout, out.stdout
        cls.nbad = Daemon(cls.db, log_name="nbad-keys.log")
        cls.nbad.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.nbad.stop()
        assert code == 0, f"nbad exited with {code} on SIGTERM"

    def call(self, request):
        c = Conn(self.nbad.port)
        try:
            return c.call(request)
        finally:
            c.close()

    def history(self, customer):
        return nbactl_json("history", "--db", self.db, "--customer", customer)

    def letters(self, customer):
        return [e for e in nbactl_json("outbox", "list", "--db", self.db)
                if e["action"] == "apology_letter" and e["customer_id"] == customer]

    def test_kiosk_by_booking_reference_then_desk_and_ivr(self):
        kiosk = self.call(by_key(1, "booking_ref", "B3RT9Z", nba.KIOSK)).decision
        self.assertEqual(kiosk.customer_id, "VIP-1")
        self.assertTrue(kiosk.known)
        self.assertEqual(kiosk.language, "it")
        self.assertIn("upgrade", action_types(kiosk))
        self.assertIn("apology_letter", action_types(kiosk))
        # What the kiosk decided is recorded under the customer_id.
        history = self.history("VIP-1")
        self.assertEqual([h["action"] for h in history].count("upgrade"), 1)
        self.assertEqual(len(self.letters("VIP-1")), 1)

        # The desk knows the passenger by id, the IVR by loyalty card: both
        # see the upgrade the kiosk gave.
        desk = self.call(contact(2, "VIP-1", nba.DESK)).decision
        ivr = self.call(by_key(3, "loyalty_card", "LC-1001", nba.IVR)).decision
        for later in (desk, ivr):
            self.assertEqual(later.customer_id, "VIP-1")
            types = action_types(later)
            self.assertNotIn("upgrade", types)
            self.assertNotIn("apology_letter", types)
            self.assertIn("upgrade_confirmed", types)
        self.assertEqual([h["action"] for h in self.history("VIP-1")].count("upgrade"), 1)
        self.assertEqual(len(self.letters("VIP-1")), 1)

    def test_retry_by_key_or_by_id_gets_the_same_decision(self):
        first = self.call(by_key(10, "booking_ref", "Q1W2E3", nba.KIOSK, "AZ700")).decision
        self.assertEqual(first.customer_id, "VIP-2")
        self.assertIn("upgrade", action_types(first))
        before = len(self.history("VIP-2"))
        # The idempotency key is the customer's, whichever way it was named.
        again = self.call(by_key(11, "booking_ref", "Q1W2E3", nba.KIOSK, "AZ700")).decision
        by_id = self.call(contact(12, "VIP-2", nba.KIOSK, flight="AZ700")).decision
        self.assertEqual(again, first)
        self.assertEqual(by_id, first)
        self.assertEqual(len(self.history("VIP-2")), before)
        self.assertEqual(len(self.letters("VIP-2")), 1)

    def test_unknown_keys_are_unknown_customers(self):
        for name, value in (("booking_ref", "NOSUCH"), ("pnr", "X7K2QP"),
                            ("booking_ref", "LC-1001"), ("booking_ref", "")):
            d = self.call(by_key(20, name, value, nba.KIOSK)).decision
            self.assertFalse(d.known, (name, value))
            self.assertEqual(d.customer_id, "", (name, value))
            self.assertNotIn("upgrade", action_types(d))
        # A customer_id wins over a key.
        req = contact(21, "LOW-1", nba.KIOSK)
        req.contact.key_name = "booking_ref"
        req.contact.key_value = "X7K2QP"
        d = self.call(req).decision
        self.assertEqual(d.customer_id, "LOW-1")
        self.assertTrue(d.known)

    def test_nbactl_decide_and_explain_by_key(self):
        port = str(self.nbad.port)
        out = nbactl_json("decide", "--key", "loyalty_card=LC-1004", "--channel", "kiosk",
                          "--touchpoint", "checkin", "--port", port)
        self.assertEqual(out["decision"]["customer_id"], "LOW-1")
        self.assertTrue(out["decision"]["known"])
        bad = nbactl("decide", "--key", "loyalty_card", "--port", port)
        self.assertEqual(bad.returncode, 64)
        remote = nbactl("explain", "--key", "loyalty_card=LC-1004", "--channel", "kiosk",
                        "--touchpoint", "checkin", "--port", port)
        self.assertEqual(remote.returncode, 0, remote.stderr)
        self.assertIn("LOW-1 (known)", remote.stdout)
        local = nbactl("explain", "--db", self.db, "--rules", RULES, "--key",
                       "loyalty_card=LC-1004", "--channel", "kiosk", "--touchpoint", "checkin")
        self.assertEqual(local.returncode, 0, local.stderr)
        self.assertIn("LOW-1 (known)", local.stdout)

    def test_db_list_names_the_lookup_keys(self):
        out = nbactl("db", "list", "--db", self.db)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("lookup keys " + KEYS, out.stdout)
        listed = nbactl_json("db", "list", "--db", self.db)
        current = [g for g in listed["generations"] if g["current"]]
        self.assertEqual(len(current), 1)
        self.assertEqual(current[0]["keys"], KEYS)

    def test_upsert_moves_a_booking_to_another_passenger(self):
        d = self.call(by_key(30, "booking_ref", "M0V3ME", nba.DESK, "AZ613")).decision
        self.assertEqual(d.customer_id, "VIP-3")
        delta = os.path.join(self.dir, "delta.csv")
        write_customers(delta, [
            ("LOW-1", "Sam Smith", "none", 150, 200, "en", "M0V3ME", "LC-1004"),
            ("VIP-3", "Ana Lima", "gold", 50000, 45000, "en", "", "LC-1003"),
        ])
        out = nbactl("load", "--upsert", "--db", self.db, "--customers", delta)
        self.assertEqual(out.returncode, 0, out.stderr)
        d = self.call(by_key(31, "booking_ref", "M0V3ME", nba.DESK, "AZ613")).decision
        self.assertEqual(d.customer_id, "LOW-1")
        d = self.call(by_key(32, "loyalty_card", "LC-1003", nba.DESK, "AZ613")).decision
        self.assertEqual(d.customer_id, "VIP-3")

    def test_duplicate_booking_reference_fails_the_load(self):
        bad = os.path.join(self.dir, "dup.csv")
        write_customers(bad, [
            ("D-1", "One", "none", 1, 2, "en", "SAME01", ""),
            ("D-2", "Two", "none", 1, 2, "en", "SAME01", ""),
        ])
        out = nbactl("load", "--db", self.db, "--customers", bad, "--keys", KEYS)
        self.assertEqual(out.returncode, 65, out.stderr)
        self.assertIn(f"{bad}:3: duplicate booking_ref, first on line 2", out.stderr)
        # The generation serving is as it was.
        d = self.call(by_key(40, "loyalty_card", "LC-1004", nba.IVR)).decision
        self.assertEqual(d.customer_id, "LOW-1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
