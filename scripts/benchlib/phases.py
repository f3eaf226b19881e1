"""The measured phases: bursts of DealPayments, create->Ready latency at low load."""

import os
import time

from .common import cpu_by_process, cpu_ms, epoch, machine_jiffies, mem_mib, minor_faults, rate_from_times

# Who else uses the machine's CPU during a burst: on 2 cores the apiserver is the usual bound.
PEERS = ("kube-apiserver", "etcd", "dealpay", "python3", "kubectl")


def check_ledger(sandbox, orders, what):
    """Every order of `orders` (order id -> uin) charged exactly once; returns its charges."""
    charges = [c for c in sandbox.ledger() if c["orderId"] in orders]
    dup = sum(1 for c in charges if c.get("duplicate"))
    per_order = {}
    for c in charges:
        per_order[c["orderId"]] = per_order.get(c["orderId"], 0) + 1
    twice = [o for o, n in per_order.items() if n > 1]
    missing = [o for o in orders if o not in per_order]
    if dup or twice or missing:
        raise SystemExit(f"{what}: {len(charges)} charges for {len(orders)} orders: {dup} marked duplicate, "
                         f"{len(twice)} charged more than once, {len(missing)} not charged")
    return charges


def span_per_account(charges, uins):
    t0 = min(epoch(c["time"]) for c in charges)
    out = []
    for uin in uins:
        times = [epoch(c["time"]) - t0 for c in charges if c["account"] == uin]
        out.append([int(min(times)), int(max(times))] if times else None)
    return out


def burst(b, key, groups):
    """Every DealPayment of groups at once: created while the operator is stopped (creating
    thousands takes longer than paying them on a busy machine, so creating them with the operator
    running would measure the creation), then a fresh operator finds them all and pays.

    groups: (namespace, uin, [order ids]); names are KEY-N per namespace. Returns the figures; wall
    time and CPU are the new operator process's, from its start until every one is Ready."""
    items = [(ns, f"{key}-{j}", oid) for ns, _, oids in groups for j, oid in enumerate(oids)]
    orders = {oid: uin for _, uin, oids in groups for oid in oids}
    b.stop_operator()
    t0 = time.monotonic()
    b.kube.create_many(items)
    created = time.monotonic() - t0
    req0 = b.kube.operator_requests()
    op = b.start_operator()
    t0 = time.monotonic()
    busy0, others0 = machine_jiffies(), cpu_by_process(PEERS)
    perf = b.perf_start(op.pid) if key == "one" else None
    b.ready.wait([(ns, name) for ns, name, _ in items], timeout=120 + 0.5 * len(items))
    b.perf_stop(perf)
    wall = time.monotonic() - t0
    cpu, faults = cpu_ms(op.pid), minor_faults(op.pid)
    busy1, others1 = machine_jiffies(), cpu_by_process(PEERS)
    req1 = b.kube.operator_requests()
    charges = check_ledger(b.sandbox, orders, key)
    n = len(orders)
    return {
        "payments": n,
        "aggregate": rate_from_times([epoch(c["time"]) for c in charges]),
        "per_account": [rate_from_times([epoch(c["time"]) for c in charges if c["account"] == uin])
                        for _, uin, _ in groups],
        # First and last charge second of each account from the first charge of all: how far apart
        # the accounts ran (the aggregate counts the whole span).
        "per_account_span_s": span_per_account(charges, [uin for _, uin, _ in groups]),
        "wall_s": round(wall, 2),
        "create_s": round(created, 2),
        "cpu_ms_per_payment": round(cpu / n, 3),
        "rss_mib_peak": mem_mib(op.pid, "VmHWM"),
        "minor_faults_per_payment": round(faults / n, 1),
        # Share of the machine's CPU time during the burst: busy overall, and per process name
        # ("dealpay" is the operator and the sandbox; "python3" the bench's own watch).
        "machine_busy_pct": round(100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 1),
        "cpu_pct_of_machine": {k: round(100 * (others1.get(k, 0) - others0.get(k, 0))
                                        / (1000 * wall * os.cpu_count()), 1) for k in others1},
        "kube_requests_per_payment": {k: round((req1[k] - req0[k]) / n, 2) for k in req0 if k[0] != "_"},
        # How long the apiserver took per request of the operator: on a busy machine the bound.
        "apiserver_ms_per_request": round(1000 * (req1["_seconds"] - req0["_seconds"])
                                          / max(1, req1["_timed"] - req0["_timed"]), 1),
    }


def latency(b, ns, uin, oids, every):
    """One DealPayment every `every` s; create -> Ready as seen on the watch. Returns (p50, p99) in ms."""
    created = {}
    for j, oid in enumerate(oids):
        name = f"lat-{j}"
        created[name] = time.monotonic()
        b.kube.create(b.kube.dp_path(ns), b.kube.dp(name, oid))
        time.sleep(every)  # the load being measured: one creation per interval, not a synchronisation
    b.ready.wait([(ns, name) for name in created], timeout=60)
    lat = sorted((b.ready.ready_at[(ns, k)] - t) * 1000 for k, t in created.items())
    check_ledger(b.sandbox, {o: uin for o in oids}, "latency")

    def pct(p):
        return round(lat[min(len(lat) - 1, int(round(p / 100 * len(lat) + 0.5)) - 1)], 1)
    return pct(50), pct(99)
