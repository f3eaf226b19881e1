"""One benchmark run: the plan of orders and accounts, the phases in order, the checks, the results."""

import os
import subprocess
import time
import uuid

from . import peers, phases, report
from .common import (LATENCY_MS, OUTDIR, RATE, cluster_env, kubectl, load_average, log,
                     mem_mib)
from .kube import Kube, ReadyWatch
from .procs import Operator, Sandbox, build, stop

ACCOUNTS = 5


class Bench:
    def __init__(self, args):
        self.args = args
        s = args.smoke
        self.n = {
            "one": int(os.environ.get("DEALPAY_BENCH_ONE") or (30 if s else 1000)),
            "five": 10 if s else 200,
            "accounts": 2 if s else ACCOUNTS,
            "lat": 10 if s else 100,
            "every": 0.2 if s else 0.5,
            "peer": 5 if s else 20,
            # Up to 10,000 DealPayments in the cache, all paid: the memory figure of issue 12.
            "cache": 0 if s or os.environ.get("DEALPAY_BENCH_SKIP_CACHE") else (10000 - 1000 - 1000 - 100) // 5,
        }
        tag = uuid.uuid4().hex[:6]
        self.tagnum = str(int(tag, 16) % 10000).zfill(4)
        self.namespaces = [f"bench-{tag}-{i}" for i in range(ACCOUNTS)]
        # Account ACCOUNTS is the peers' own, so their calls never share a lane with the operator's.
        self.accounts = [(f"10000000{self.tagnum}{i}", f"bench-id-{tag}-{i}", f"bench-key-{i}")
                         for i in range(ACCOUNTS + 1)]
        self.next_order = 0
        self.results = {}
        self.counts = {}
        self.operator = None

    def order_ids(self, n):
        self.next_order += n
        return [f"2026{self.tagnum}{i:012d}" for i in range(self.next_order - n + 1, self.next_order + 1)]

    def groups(self, per_account, accounts):
        return [(self.namespaces[a], self.accounts[a][0], self.order_ids(per_account)) for a in range(accounts)]

    def run(self):
        cluster_env()
        os.makedirs(OUTDIR, exist_ok=True)
        open(os.path.join(OUTDIR, "operator.log"), "w").close()  # each operator of the run appends
        n, r = self.n, self.results
        plan = {
            "one": self.groups(n["one"], 1),
            "five": self.groups(n["five"], n["accounts"]),
            "lat": self.order_ids(n["lat"]),
            "cache": self.groups(n["cache"], ACCOUNTS) if n["cache"] else [],
            "tccli": self.order_ids(n["peer"]),
            "sdk": self.order_ids(n["peer"]),
        }
        orders = [(o, uin) for k in ("one", "five", "cache") for _, uin, oids in plan[k] for o in oids]
        orders += [(o, self.accounts[0][0]) for o in plan["lat"]]
        orders += [(o, self.accounts[ACCOUNTS][0]) for o in plan["tccli"] + plan["sdk"]]
        binary, self.operator_binary, r["profile"], r["binary_mib"] = build(self.args.debug)
        r["binary_under_test_mib"] = round(os.path.getsize(self.operator_binary) / 2**20, 2)
        r["load_average_start"] = load_average()
        self.kube = Kube()
        subprocess.run(f"{binary} crd | {kubectl()} apply --validate=false -f - >/dev/null", shell=True, check=True)
        subprocess.run(f"{binary} crd --receipt | {kubectl()} apply --validate=false -f - >/dev/null", shell=True, check=True)
        self.sandbox = Sandbox(binary, self.accounts, orders)
        for ns, (uin, sid, key) in zip(self.namespaces, self.accounts):
            self.kube.namespace_with_secret(ns, sid, key, uin)
        self.binary = binary
        try:
            op = self.start_operator()
            r["start_ms"] = op.start_ms
            time.sleep(3)  # let the first list and watches settle before the idle reading
            r["rss_mib_idle"] = mem_mib(op.pid)
            r["rss_mib_idle_file"] = mem_mib(op.pid, "RssFile")
            self.ready = ReadyWatch(self.kube, self.namespaces)
            log(f"one account: {n['one']} DealPayments at once")
            b1 = phases.burst(self, "one", plan["one"])
            r.update(payments_per_second=b1["aggregate"], wall_s_1_account=b1["wall_s"],
                     create_s_1_account=b1["create_s"], cpu_ms_per_payment=b1["cpu_ms_per_payment"],
                     minor_faults_per_payment=b1["minor_faults_per_payment"],
                     kube_requests_per_payment=b1["kube_requests_per_payment"],
                     apiserver_ms_per_request=b1["apiserver_ms_per_request"],
                     rss_mib_peak_burst=b1["rss_mib_peak"], machine_busy_pct_1_account=b1["machine_busy_pct"],
                     cpu_pct_of_machine_1_account=b1["cpu_pct_of_machine"])
            log(f"{n['accounts']} accounts: {n['accounts']} x {n['five']} DealPayments at once")
            b5 = phases.burst(self, "five", plan["five"])
            r.update(accounts=n["accounts"], payments_per_second_5_accounts=b5["aggregate"],
                     per_account_payments_per_second=b5["per_account"], wall_s_5_accounts=b5["wall_s"],
                     per_account_span_s_5_accounts=b5["per_account_span_s"],
                     apiserver_ms_per_request_5_accounts=b5["apiserver_ms_per_request"],
                     machine_busy_pct_5_accounts=b5["machine_busy_pct"],
                     cpu_pct_of_machine_5_accounts=b5["cpu_pct_of_machine"])
            self.save()
            log(f"latency: {n['lat']} DealPayments, one every {n['every']} s")
            r["ready_p50_ms"], r["ready_p99_ms"] = phases.latency(
                self, self.namespaces[0], self.accounts[0][0], plan["lat"], n["every"])
            p = peers.measure(self.sandbox, self.accounts[ACCOUNTS], plan["tccli"], plan["sdk"],
                              install=not self.args.smoke)
            for peer in ("tccli", "sdk"):
                for k, v in (p or {}).get(peer, {}).items():
                    r[f"{peer}_{k}"] = v
            r.setdefault("tccli_payments_per_second", None)
            r.setdefault("sdk_payments_per_second", None)
            r["rss_mib_10k"] = None
            self.save()
            if plan["cache"]:
                self.cache_phase(plan["cache"])
            self.stop_operator()
            counts = self.counts
            r["rate_limited"] = counts["rate_limited"]
            r["errors"] = {k: counts[k] for k in ("failed_payments", "failed_reconciles")}
            r["load_average_end"] = load_average()
            r["smoke"] = self.args.smoke
            r["settings"] = {"sandbox_rate_per_account_and_action": RATE, "latency_fault_ms": LATENCY_MS,
                             "sandbox": "HTTPS"}
            r["ratios"] = report.ratios(r)
            report.print_table(r)
        finally:
            log(f"wrote {self.save()}; cleaning up")
            # Namespaces go while an operator runs: it releases the finalizers of settled payments.
            # A last operator releases the finalizers; its counts are not part of the figures.
            self.operator = self.operator or Operator(self.operator_binary, self.sandbox, self.namespaces)
            self.kube.delete_namespaces(self.namespaces, timeout=60 + len(orders) // 50)
            stop(self.operator.proc)
            stop(self.sandbox.proc)
            self.kube.stop()
        self.check(r)

    def start_operator(self):
        self.operator = Operator(self.operator_binary, self.sandbox, self.namespaces)
        return self.operator

    def stop_operator(self):
        """Stops the operator, adding its counts to the run's."""
        if self.operator:
            for k, v in self.operator.counts().items():
                self.counts[k] = self.counts.get(k, 0) + v
            stop(self.operator.proc)
            self.operator = None

    def save(self):
        """Written after every phase too, so a run that breaks later still leaves its figures."""
        out = self.args.out or os.path.join(OUTDIR, "results-smoke.json" if self.args.smoke else "results.json")
        report.write(self.results, out)
        return out

    def cache_phase(self, groups):
        r = self.results
        log(f"cache: {len(groups)} x {len(groups[0][2])} more DealPayments")
        b = phases.burst(self, "cache", groups)
        r["cpu_ms_per_payment_10k_phase"] = b["cpu_ms_per_payment"]
        r["kube_requests_per_payment_10k_phase"] = b["kube_requests_per_payment"]
        r["payments_per_second_10k_phase"] = b["aggregate"]
        r["objects_cached"] = sum(self.kube.count_dps(ns) for ns in self.namespaces)
        time.sleep(5)  # the last status writes' watch events reach the cache
        r["rss_mib_10k"] = mem_mib(self.operator.pid)
        r["rss_mib_peak"] = mem_mib(self.operator.pid, "VmHWM")
        # At rest: the same cache half a minute later, once the burst's buffers are freed and trimmed.
        time.sleep(30)
        r["rss_mib_10k_at_rest"] = mem_mib(self.operator.pid)
        # Heap and other private memory vs pages of the binary and libraries mapped from the page cache.
        r["rss_mib_10k_anon"] = mem_mib(self.operator.pid, "RssAnon")
        r["rss_mib_10k_file"] = mem_mib(self.operator.pid, "RssFile")
        r["minor_faults_per_payment_10k_phase"] = b["minor_faults_per_payment"]

    def check(self, r):
        """The run's own counts (every phase already checked every order charged exactly once)."""
        bad = {k: v for k, v in r["errors"].items() if v}
        if bad:
            raise SystemExit(f"errors during the run: {bad}; see target/bench/operator.log")
        log("checks: every order charged exactly once, 0 failed payments, 0 failed reconciles")

    @staticmethod
    def perf_start(pid):
        """DEALPAY_BENCH_PERF=1: `perf record` of the operator during the one-account burst."""
        if not os.environ.get("DEALPAY_BENCH_PERF"):
            return None
        data = os.path.join(OUTDIR, "perf-burst.data")
        log(f"perf record -g of the operator into {data}")
        return subprocess.Popen(["perf", "record", "-g", "-F", "499", "-p", str(pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @staticmethod
    def perf_stop(proc):
        if proc:
            proc.send_signal(2)
            proc.wait(60)
