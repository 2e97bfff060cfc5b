#!/usr/bin/env python3
"""The service-recovery loop from outside: a passenger walking from kiosk to
desk to IVR, a retried check-in, the letter service's outbox commands, and
the customer service system's live incident feed, against the real nbad
with the shipped rules.
"""
import os
import shutil
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from nbatest import (WORK, Conn, Daemon, action_types, contact, iso, load, nba,  # noqa: E402
                     nbactl_json, write_csvs)
import subprocess  # noqa: E402
from nbatest import NBACTL, RULES  # noqa: E402

BURST = 10000


class Recovery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.customers = customers = [
            ("VIP-1", "Giulia Rossi", "platinum", 90000, 60000, "it"),
            ("VIP-2", "Marco Bianchi", "gold", 50000, 45000, "it"),
            ("VIP-3", "Ana Lima", "gold", 50000, 45000, "en"),
            ("FEED-1", "Lee Chan", "gold", 40000, 35000, "en"),
            ("FEED-2", "Ola Berg", "gold", 40000, 35000, "en"),
            ("LOW-1", "Sam Smith", "none", 150, 200, "en"),
        ]
        cls.incidents = incidents = [
            ("INC-1", "VIP-1", "ife_broken", 3, iso(10), "AZ611", 0, "no screen"),
            ("INC-2", "VIP-2", "delay", 3, iso(5), "AZ612", 0, ""),
            ("INC-3", "VIP-3", "lost_baggage", 4, iso(3), "AZ613", 0, ""),
        ]
        cpath, ipath = write_csvs(WORK, customers, incidents)
        cls.db = os.path.join(WORK, "db")
        load(cls.db, cpath, ipath)
        cls.nbad = Daemon(cls.db)
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

    def outbox(self, action="apology_letter"):
        return [e for e in nbactl_json("outbox", "list", "--db", self.db)
                if e["action"] == action]

    def test_walk_from_kiosk_to_desk_to_ivr(self):
        kiosk = self.call(contact(1, "VIP-1", nba.KIOSK)).decision
        self.assertIn("upgrade", action_types(kiosk))
        self.assertIn("apology_letter", action_types(kiosk))
        for channel in (nba.DESK, nba.IVR):
            later = self.call(contact(2, "VIP-1", channel)).decision
            types = action_types(later)
            self.assertNotIn("upgrade", types, channel)
            self.assertNotIn("apology_letter", types, channel)
            self.assertIn("upgrade_confirmed", types, channel)
            said = [a.message for a in later.actions if a.type == "upgrade_confirmed"]
            self.assertTrue(said[0], "the agent or the IVR must have something to say")
            self.assertEqual(later.language, "it")

        history = self.history("VIP-1")
        self.assertEqual([h["action"] for h in history].count("upgrade"), 1)
        self.assertEqual([h["action"] for h in history].count("apology_letter"), 1)
        upgrade = next(h for h in history if h["action"] == "upgrade")
        self.assertEqual(upgrade["incident_id"], "INC-1")
        self.assertEqual(upgrade["channel"], "KIOSK")
        letters = [e for e in self.outbox()
                   if e["customer_id"] == "VIP-1" and e["action"] == "apology_letter"]
        self.assertEqual(len(letters), 1)
        self.assertEqual(letters[0]["incident_id"], "INC-1")
        self.assertEqual(letters[0]["language"], "it")
        self.assertIn("Giulia Rossi", letters[0]["text"])
        self.assertIn("<p>", letters[0]["html"])

    def test_retried_check_in_gets_the_same_decision_and_creates_nothing(self):
        first = self.call(contact(10, "VIP-2", nba.KIOSK)).decision
        self.assertIn("upgrade", action_types(first))
        before = len(self.history("VIP-2"))
        letters_before = len([e for e in self.outbox() if e["customer_id"] == "VIP-2"])
        again = self.call(contact(11, "VIP-2", nba.KIOSK)).decision
        self.assertEqual(again, first)
        self.assertEqual(len(self.history("VIP-2")), before)
        self.assertEqual(len([e for e in self.outbox() if e["customer_id"] == "VIP-2"]),
                         letters_before)
        self.assertEqual(letters_before, 1)

    def test_letter_service_exports_until_acknowledged(self):
        self.call(contact(20, "VIP-3", nba.DESK))
        mine = [e for e in self.outbox() if e["customer_id"] == "VIP-3"]
        self.assertEqual(len(mine), 1)
        letter_id = str(mine[0]["id"])
        out = os.path.join(WORK, "letters")
        for _ in range(2):  # exported, not acknowledged: exported again
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run([NBACTL, "outbox", "export", "--db", self.db, out], check=True,
                           capture_output=True)
            with open(os.path.join(out, letter_id + ".txt"), encoding="utf-8") as f:
                self.assertIn("Ana Lima", f.read())
            with open(os.path.join(out, letter_id + ".html"), encoding="utf-8") as f:
                self.assertIn("<html", f.read())
            self.assertTrue(os.path.exists(os.path.join(out, letter_id + ".json")))
        exported = [e for e in self.outbox() if e["customer_id"] == "VIP-3"]
        self.assertEqual(exported[0]["exports"], 2)
        subprocess.run([NBACTL, "outbox", "ack", "--db", self.db, letter_id], check=True,
                       capture_output=True)
        self.assertEqual([e for e in self.outbox() if e["customer_id"] == "VIP-3"], [])
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([NBACTL, "outbox", "export", "--db", self.db, out], check=True,
                       capture_output=True)
        self.assertFalse(os.path.exists(os.path.join(out, letter_id + ".txt")))
        # Acknowledging again is harmless.
        subprocess.run([NBACTL, "outbox", "ack", "--db", self.db, letter_id], check=True,
                       capture_output=True)

    def report(self, req_id, customer, incident, severity=3, kind="delay"):
        req = nba.Request(id=req_id)
        inc = req.report_incident.incident
        inc.customer_id, inc.incident_id, inc.kind, inc.severity = customer, incident, kind, severity
        inc.flight = "AZ700"
        return req

    def test_a_decision_after_the_acknowledgment_sees_the_incident(self):
        before = self.call(contact(30, "FEED-1", nba.KIOSK, flight="AZ701")).decision
        self.assertNotIn("upgrade", action_types(before))
        ack = self.call(self.report(31, "FEED-1", "LIVE-1"))
        self.assertEqual(ack.WhichOneof("body"), "incident", ack)
        self.assertTrue(ack.incident.created)
        after = self.call(contact(32, "FEED-1", nba.KIOSK, flight="AZ702")).decision
        self.assertIn("upgrade", action_types(after))

        # Resolved before the passenger shows up: no recovery.
        self.assertTrue(self.call(self.report(33, "FEED-2", "LIVE-2")).incident.created)
        req = nba.Request(id=34)
        req.resolve_incident.customer_id = "FEED-2"
        req.resolve_incident.incident_id = "LIVE-2"
        self.assertEqual(self.call(req).WhichOneof("body"), "incident")
        self.assertNotIn("upgrade",
                         action_types(self.call(contact(35, "FEED-2", nba.KIOSK)).decision))

    def test_bad_reports_are_refused_and_the_connection_goes_on(self):
        c = Conn(self.nbad.port)
        try:
            bad = self.report(40, "FEED-1", "LIVE-X", severity=9)
            answer = c.call(bad)
            self.assertEqual(answer.error.code, "bad_request")
            missing = nba.Request(id=41)
            missing.resolve_incident.customer_id = "FEED-1"
            missing.resolve_incident.incident_id = "NO-SUCH"
            self.assertEqual(c.call(missing).error.code, "not_found")
            self.assertEqual(c.call(nba.Request(id=42, ping=nba.Ping())).WhichOneof("body"),
                             "pong")
        finally:
            c.close()

    def test_burst_of_reports_under_steady_load(self):
        failures = []
        stop = threading.Event()

        def steady():
            c = Conn(self.nbad.port)
            i = 0
            while not stop.is_set():
                i += 1
                answer = c.call(contact(i, "LOW-1", nba.KIOSK))
                if answer.WhichOneof("body") != "decision" or not answer.decision.known:
                    failures.append(answer)
            c.close()

        def reporter(k, count):
            # A generous timeout: under the sanitizers a batch of a thousand
            # writes takes seconds.
            c = Conn(self.nbad.port, timeout=120)
            # Pipelined: everything is sent, then every answer read.
            c.send_raw(b"".join(
                _frame(self.report(i, f"BURST-{k}", f"B-{k}-{i}")) for i in range(count)))
            for i in range(count):
                answer = c.recv()
                if answer.id != i or answer.WhichOneof("body") != "incident":
                    failures.append(answer)
            c.close()

        load_thread = threading.Thread(target=steady)
        load_thread.start()
        connections = 8
        reporters = [threading.Thread(target=reporter, args=(k, BURST // connections))
                     for k in range(connections)]
        for t in reporters:
            t.start()
        for t in reporters:
            t.join()
        stop.set()
        load_thread.join()
        self.assertEqual(failures, [])
        status = self.call(nba.Request(id=1, status=nba.StatusRequest())).status
        print(f"{BURST} reports: {status.writes_total} writes in {status.write_commits} commits "
              f"(largest batch {status.write_largest_batch})", file=sys.stderr)
        self.assertGreaterEqual(status.writes_total, BURST)


    def test_refresh_switches_under_steady_load(self):
        """A full reload builds a new generation beside the one serving and
        switches to it: no request fails, the new data serves within
        seconds, and what nbad wrote (history, letters) is still there."""
        failures = []
        stop = threading.Event()
        served = []

        def steady(k):
            c = Conn(self.nbad.port)
            i = 0
            while not stop.is_set():
                i += 1
                answer = c.call(contact(i, "LOW-1", nba.DESK, flight="AZ800"))
                if answer.WhichOneof("body") != "decision" or not answer.decision.known:
                    failures.append(answer)
                served.append(1)
            c.close()

        threads = [threading.Thread(target=steady, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        history_before = nbactl_json("history", "--db", self.db)
        customers = self.customers + [("NEW-1", "Nina Novak", "silver", 900, 1200, "en")]
        directory = os.path.join(WORK, "refresh")
        os.makedirs(directory, exist_ok=True)
        cpath, ipath = write_csvs(directory, customers, self.incidents)
        load(self.db, cpath, ipath)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.call(contact(1, "NEW-1", nba.KIOSK)).decision.known:
                break
            time.sleep(0.05)
        else:
            self.fail("the new generation never served")
        time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        self.assertGreater(len(served), 100)
        self.assertEqual(nbactl_json("history", "--db", self.db), history_before)
        # The old generation goes once no reader holds it.
        deadline = time.time() + 10
        while time.time() < deadline and len(
                [g for g in os.listdir(self.db) if g.startswith("gen-")]) > 1:
            time.sleep(0.1)
        self.assertEqual(len([g for g in os.listdir(self.db) if g.startswith("gen-")]), 1)


class Expiry(unittest.TestCase):
    """A stored decision answers retries for the idempotency window, then the
    writer's idle sweep removes it: a retry after that is decided again, and
    the contact history, not the stored decision, keeps it from giving the
    upgrade twice."""

    def test_stored_decision_expires_after_the_window(self):
        directory = os.path.join(WORK, "expiry")
        os.makedirs(directory, exist_ok=True)
        with open(RULES, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("    window: 1d\n", text)
        rules = os.path.join(directory, "airline-checkin.yaml")
        with open(rules, "w", encoding="utf-8") as f:
            f.write(text.replace("    window: 1d\n", "    window: 2s\n"))
        cpath, ipath = write_csvs(
            directory, [("VIP-8", "Giulia Rossi", "platinum", 90000, 60000, "it")],
            [("INC-8", "VIP-8", "ife_broken", 3, iso(10), "AZ611", 0, "")])
        db = os.path.join(directory, "db")
        load(db, cpath, ipath)
        log = os.path.join(WORK, "nbad-expiry.log")
        nbad = Daemon(db, log_name="nbad-expiry.log", rules=rules)
        nbad.start()
        try:
            c = Conn(nbad.port)
            first = c.call(contact(1, "VIP-8", nba.KIOSK)).decision
            self.assertIn("upgrade", action_types(first))
            retry = c.call(contact(2, "VIP-8", nba.KIOSK)).decision
            self.assertEqual(action_types(retry), action_types(first))
            c.close()
            deadline = time.time() + 20
            while time.time() < deadline:
                with open(log, encoding="utf-8") as f:
                    if "state: removed 1 expired records" in f.read():
                        break
                time.sleep(0.2)
            else:
                self.fail("nbad did not remove the expired decision")
            c = Conn(nbad.port)
            late = c.call(contact(3, "VIP-8", nba.KIOSK)).decision
            c.close()
            self.assertNotIn("upgrade", action_types(late))
            self.assertIn("upgrade_confirmed", action_types(late))
        finally:
            self.assertEqual(nbad.stop(), 0)
        actions = [e["action"] for e in nbactl_json("history", "--db", db, "--customer", "VIP-8")]
        self.assertEqual(actions.count("upgrade"), 1)


class ReadOnlyReplica(unittest.TestCase):
    """record_contacts false: decisions from the loaded data alone, nothing
    written, no state directory, incident reports refused."""

    def test_nothing_is_recorded(self):
        directory = os.path.join(WORK, "replica")
        os.makedirs(directory, exist_ok=True)
        cpath, ipath = write_csvs(
            directory, [("VIP-9", "Giulia Rossi", "platinum", 90000, 60000, "it")],
            [("INC-9", "VIP-9", "ife_broken", 3, iso(10), "AZ611", 0, "")])
        db = os.path.join(directory, "db")
        load(db, cpath, ipath)
        nbad = Daemon(db, log_name="nbad-replica.log", extra=["--record-contacts=false"])
        nbad.start()
        try:
            c = Conn(nbad.port)
            for i, channel in enumerate([nba.KIOSK, nba.DESK, nba.KIOSK]):
                self.assertIn("upgrade", action_types(c.call(contact(i, "VIP-9", channel)).decision))
            req = nba.Request(id=9)
            inc = req.report_incident.incident
            inc.customer_id, inc.incident_id, inc.kind, inc.severity = "VIP-9", "L-1", "delay", 3
            self.assertEqual(c.call(req).error.code, "unsupported")
            c.close()
        finally:
            self.assertEqual(nbad.stop(), 0)
        self.assertFalse(os.path.exists(os.path.join(db, "state")))


def _frame(request):
    body = request.SerializeToString()
    return len(body).to_bytes(4, "big") + body


if __name__ == "__main__":
    unittest.main()
