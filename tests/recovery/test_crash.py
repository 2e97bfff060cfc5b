#!/usr/bin/env python3
"""Crash test of the recovery loop: thousands of check-ins for passengers
with open incidents, from kiosk, desk and IVR, while nbad is killed with
SIGKILL at random moments and restarted, several times. The clients retry
every request they did not see answered, as a kiosk would. Afterwards:

- every check-in acknowledged with a letter has exactly one letter in the
  outbox (none lost);
- no incident has two letters or two upgrades (none doubled), although
  every unanswered request was sent again;
- every passenger who was answered got exactly one upgrade.
"""
import collections
import os
import queue
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from nbatest import (WORK, Conn, Daemon, action_types, contact, iso, load, nba,  # noqa: E402
                     nbactl_json, write_csvs)

PASSENGERS = 1000
CLIENTS = 8
KILLS = 6
SEED = int(os.environ.get("NBA_CRASH_SEED", "7411"))


class Crash(unittest.TestCase):
    def test_kill_and_restart_under_check_ins(self):
        rng = random.Random(SEED)
        customers = [(f"P{i:04d}", f"Passenger {i}", "gold", 50000, 45000,
                      rng.choice(["en", "it", "zh-Hant"])) for i in range(PASSENGERS)]
        incidents = [(f"X{i:04d}", f"P{i:04d}", rng.choice(["delay", "ife_broken", "lost_baggage"]),
                      rng.randint(2, 5), iso(rng.randint(1, 60)), f"AZ{rng.randint(100, 999)}",
                      0, "") for i in range(PASSENGERS)]
        directory = os.path.join(WORK, "crash")
        os.makedirs(directory, exist_ok=True)
        cpath, ipath = write_csvs(directory, customers, incidents)
        db = os.path.join(directory, "db")
        load(db, cpath, ipath)
        nbad = Daemon(db, log_name="nbad-crash.log")
        nbad.start()

        # Each passenger walks through one to three channels for one flight.
        work = queue.Queue()
        for i in range(PASSENGERS):
            channels = rng.sample([nba.KIOSK, nba.DESK, nba.IVR], rng.randint(1, 3))
            for channel in channels:
                work.put((f"P{i:04d}", channel, f"AZ{i % 900 + 100}"))
        total = work.qsize()
        answered = []  # (customer, channel, decision)
        answered_lock = threading.Lock()
        retries = collections.Counter()
        done = threading.Event()
        kills = []

        def client(k):
            conn = None
            req_id = k * 1_000_000
            while True:
                try:
                    customer, channel, flight = work.get_nowait()
                except queue.Empty:
                    break
                req_id += 1
                request = contact(req_id, customer, channel, flight=flight)
                while True:  # until answered: the same request again
                    try:
                        if conn is None:
                            conn = Conn(nbad.port, timeout=5)
                        answer = conn.call(request)
                    except (OSError, EOFError):
                        if conn is not None:
                            conn.close()
                            conn = None
                        retries[k] += 1
                        time.sleep(0.02)
                        continue
                    if answer.WhichOneof("body") == "error" and answer.error.code == "unavailable":
                        retries[k] += 1  # not durable: nothing was recorded; ask again
                        continue
                    break
                self.assertEqual(answer.id, req_id)
                self.assertEqual(answer.WhichOneof("body"), "decision", answer)
                with answered_lock:
                    answered.append((customer, channel, answer.decision))
            if conn is not None:
                conn.close()

        # Kills at random points of the work, so that each one lands while
        # check-ins are in flight (and some of them in a write).
        kill_at = sorted(rng.sample(range(total // 20, total - total // 20), KILLS))

        def killer():
            for point in kill_at:
                while not done.is_set():
                    with answered_lock:
                        if len(answered) >= point:
                            break
                    time.sleep(0.001)
                if done.is_set():
                    return
                nbad.kill()
                kills.append(point)
                time.sleep(rng.uniform(0.0, 0.2))
                nbad.start()

        clients = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        kill_thread = threading.Thread(target=killer)
        kill_thread.start()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        done.set()
        kill_thread.join()
        self.assertEqual(nbad.stop(), 0)
        self.assertEqual(len(answered), total)
        self.assertEqual(len(kills), KILLS)
        self.assertGreater(sum(retries.values()), 0, "no request was caught by a kill")

        outbox = nbactl_json("outbox", "list", "--db", db)
        history = nbactl_json("history", "--db", db)
        letters = collections.Counter(
            (e["customer_id"], e["incident_id"]) for e in outbox if e["action"] == "apology_letter")
        upgrades = collections.Counter(
            (h["customer_id"], h["incident_id"]) for h in history if h["action"] == "upgrade")
        letter_history = collections.Counter(
            (h["customer_id"], h["incident_id"]) for h in history if h["action"] == "apology_letter")

        with_letter = {c for c, _, d in answered if "apology_letter" in action_types(d)}
        self.assertTrue(with_letter, "no check-in was answered with a letter")
        for customer in with_letter:
            incident = "X" + customer[1:]
            self.assertEqual(letters[(customer, incident)], 1, customer)
        self.assertEqual([k for k, n in letters.items() if n > 1], [])
        self.assertEqual([k for k, n in upgrades.items() if n > 1], [])
        self.assertEqual([k for k, n in letter_history.items() if n > 1], [])
        served = {c for c, _, _ in answered}
        self.assertEqual({c for c, _ in upgrades}, served)
        print(f"{total} check-ins for {PASSENGERS} passengers, {KILLS} kills, "
              f"{sum(retries.values())} retries, {len(outbox)} letters, "
              f"{sum(upgrades.values())} upgrades", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
