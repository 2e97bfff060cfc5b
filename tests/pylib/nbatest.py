"""What the Python tests share: a client of the wire protocol written from
proto/nba.proto alone (the Python classes are generated here with protoc),
and the real nbad and nbactl started on loopback.

The tests run with NBAD_BIN, NBACTL_BIN and NBA_SOURCE_DIR set (by ctest);
they need protoc and python3-protobuf (deploy/install-deps.sh installs both).
"""
import datetime
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SOURCE = os.environ["NBA_SOURCE_DIR"]
NBAD = os.environ["NBAD_BIN"]
NBACTL = os.environ["NBACTL_BIN"]
RULES = os.path.join(SOURCE, "rules", "airline-checkin.yaml")

WORK = tempfile.mkdtemp(prefix="nba-pytest-")
subprocess.run(["protoc", "--python_out=" + WORK, "--proto_path=" + os.path.join(SOURCE, "proto"),
                "nba.proto"], check=True)
sys.path.insert(0, WORK)
import nba_pb2 as nba  # noqa: E402  (generated just above)


def iso(days_ago):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Conn:
    """Frames: a 4-byte big-endian length, then one protobuf message."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, request):
        body = request.SerializeToString()
        self.send_raw(struct.pack(">I", len(body)) + body)

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("connection closed")
            data += chunk
        return data

    def recv(self):
        (n,) = struct.unpack(">I", self._read(4))
        response = nba.Response()
        response.ParseFromString(self._read(n))
        return response

    def call(self, request):
        self.send(request)
        return self.recv()

    def close(self):
        self.sock.close()


def contact(req_id, customer, channel, cabin="Y", flight="AZ610", touchpoint="checkin"):
    req = nba.Request(id=req_id)
    req.contact.customer_id = customer
    req.contact.channel = channel
    req.contact.touchpoint = touchpoint
    req.contact.context["cabin"] = cabin
    req.contact.context["flight"] = flight
    return req


def action_types(decision):
    return [a.type for a in decision.actions]


def write_csvs(directory, customers, incidents):
    """customers: rows after the header customer_id,name,tier,lifetime_value,
    predicted_ltv,language; incidents: rows after incident_id,customer_id,kind,
    severity,occurred_at,flight,resolved,note. Returns the two paths."""
    cpath = os.path.join(directory, "customers.csv")
    ipath = os.path.join(directory, "incidents.csv")
    with open(cpath, "w", encoding="utf-8") as f:
        f.write("customer_id,name,tier,lifetime_value,predicted_ltv,language\n")
        f.writelines(",".join(map(str, row)) + "\n" for row in customers)
    with open(ipath, "w", encoding="utf-8") as f:
        f.write("incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note\n")
        f.writelines(",".join(map(str, row)) + "\n" for row in incidents)
    return cpath, ipath


def load(db, customers_csv, incidents_csv):
    subprocess.run([NBACTL, "load", "--db", db, "--customers", customers_csv,
                    "--incidents", incidents_csv], check=True, capture_output=True)


def nbactl_json(*args):
    """Runs nbactl with --json and returns what it printed, parsed."""
    out = subprocess.run([NBACTL, *args, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


class Daemon:
    """The real nbad on a loopback port, its log in WORK."""

    def __init__(self, db, port=None, threads=2, log_name="nbad.log", extra=(), rules=None):
        self.db = db
        self.rules = rules or RULES
        self.extra = list(extra)
        self.port = port or free_port()
        self.threads = threads
        self.log = open(os.path.join(WORK, log_name), "a")
        self.proc = None

    def start(self, timeout=10):
        self.proc = subprocess.Popen([NBAD, "--db", self.db, "--rules", self.rules,
                                      "--port", str(self.port), "--threads", str(self.threads),
                                      *self.extra],
                                     stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nbad exited with {self.proc.returncode}")
            try:
                c = Conn(self.port)
                c.call(nba.Request(id=1, ping=nba.Ping()))
                c.close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nbad did not come up")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        """SIGTERM; returns nbad's exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)
