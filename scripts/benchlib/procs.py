"""The processes under test: the binaries, `dealpay sandbox` over HTTPS and `dealpay run`."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time

from .common import LATENCY_MS, OUTDIR, RATE, ROOT, free_port, http, log, trust


def build(debug):
    """(binary with the sandbox, binary the operator runs, profile, production binary size in MiB or None).

    The operator runs the production binary (the image's: release, `--no-default-features`, no
    simulator), as a cluster would: code it does not have is not mapped into its memory either. The
    sandbox needs the `sandbox` feature. Cargo keeps both feature sets' artifacts, so switching between
    them only relinks. The smoke run (--debug) uses the debug binary for both."""
    if os.environ.get("DEALPAY_BENCH_BIN"):
        given = os.environ["DEALPAY_BENCH_BIN"]
        prod = os.environ.get("DEALPAY_BENCH_PRODUCTION_BIN")
        return (given, prod or given, "given: DEALPAY_BENCH_BIN",
                round(os.path.getsize(prod) / 2**20, 2) if prod else None)
    if debug:
        log("building the debug binary")
        subprocess.run(["cargo", "build", "--bin", "dealpay"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target/debug/dealpay")
        return binary, binary, "debug", None
    log("building the production binary (release, --no-default-features)")
    subprocess.run(["cargo", "build", "--release", "--no-default-features", "--bin", "dealpay"],
                   cwd=ROOT, check=True)
    prod = os.path.join(OUTDIR, "dealpay-production")
    shutil.copyfile(os.path.join(ROOT, "target/release/dealpay"), prod)
    size = round(os.path.getsize(prod) / 2**20, 2)
    log("building the release binary with the sandbox")
    subprocess.run(["cargo", "build", "--release", "--bin", "dealpay"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target/release/dealpay"), prod, "release", size


class Sandbox:
    """`dealpay sandbox` over HTTPS with a fresh CA, RATE per account and action, +LATENCY_MS."""

    def __init__(self, binary, accounts, orders):
        """accounts: (uin, secretId, secretKey); orders: (order id, uin)."""
        state = {
            "accounts": [{"uin": u, "secretId": i, "secretKey": k, "balance": 10**12}
                         for u, i, k in accounts],
            "orders": [{"orderId": o, "account": u, "price": 100} for o, u in orders],
            "faults": [{"kind": "latency", "ms": LATENCY_MS}],
        }
        path = os.path.join(OUTDIR, "sandbox-state.json")
        with open(path, "w") as f:
            json.dump(state, f)
        tls = os.path.join(OUTDIR, "sandbox-tls")
        shutil.rmtree(tls, ignore_errors=True)
        self.proc = subprocess.Popen(
            [binary, "sandbox", "--listen", "127.0.0.1:0", "--state", path, "--rate-limit", str(RATE),
             "--tls-self-signed", tls, "--log-level", "warn"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(OUTDIR, "sandbox.log"), "w"), text=True)
        first = self.proc.stdout.readline()
        if not first.startswith("listening on "):
            raise SystemExit(f"sandbox did not start: {first!r}")
        self.url = first[len("listening on "):].strip()
        self.host_port = self.url.split("://", 1)[1]
        self.ca = os.path.join(tls, "ca.pem")
        trust(self.ca)
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def ledger(self):
        return http("GET", f"{self.url}/_sandbox/ledger", timeout=60)


class Operator:
    """`dealpay run` against the sandbox, watching the given namespaces, metrics on a free port."""

    def __init__(self, binary, sandbox, namespaces, wrap=()):
        self.metrics_port = free_port()
        env = dict(os.environ)
        for k in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_TOKEN"):
            env.pop(k, None)
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [*wrap, binary, "run", "--endpoint", sandbox.url, "--ca-file", sandbox.ca,
             "--namespaces", ",".join(namespaces), "--leader-election=false",
             "--metrics-addr", f"127.0.0.1:{self.metrics_port}",
             "--log-level", os.environ.get("DEALPAY_BENCH_LOG") or "warn",
             "--rate", str(RATE)],
            env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(OUTDIR, "operator.log"), "a"))
        self.pid = self.proc.pid
        while True:
            try:
                http("GET", f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("operator exited; see target/bench/operator.log")
                time.sleep(0.01)
        self.start_ms = round((time.monotonic() - t0) * 1000, 1)

    def metrics(self):
        """{metric line without value: value} of dealpay_* counters."""
        out = {}
        for line in http("GET", f"http://127.0.0.1:{self.metrics_port}/metrics").splitlines():
            if line.startswith("dealpay_") and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def counts(self):
        """RequestLimitExceeded answers (a figure: retried after the lane's pause), failed PayDeals
        otherwise, and failed reconciles."""
        m = self.metrics()
        rl = sum(v for k, v in m.items()
                 if k.startswith("dealpay_account_api_calls_total{") and "RequestLimitExceeded" in k)
        failed_pay = sum(v for k, v in m.items()
                         if k.startswith("dealpay_payments_total{") and 'outcome="paid"' not in k
                         and "RequestLimitExceeded" not in k)
        # Not failures: "conflict" (the expected answer to a stale cache, decided again), "stale" and
        # "settled" (nothing to decide: a newer version is on its way, or the payment is done).
        fine = ('result="ok"', 'result="conflict"', 'result="stale"', 'result="settled"')
        failed_rec = sum(v for k, v in m.items()
                         if k.startswith("dealpay_reconciles_total{") and not any(f in k for f in fine))
        return {"rate_limited": int(rl), "failed_payments": int(failed_pay),
                "failed_reconciles": int(failed_rec)}


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
