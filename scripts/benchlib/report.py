"""The table printed at the end, the goals of issue 12, the peers as ratios, and the run's own checks."""

import json

# key: (goal text, test on the value)
GOALS = {
    "payments_per_second": ("≥ 19.5", lambda v: v >= 19.5),
    "payments_per_second_5_accounts": ("≥ 97", lambda v: v >= 97),
    "rate_limited": ("0", lambda v: v == 0),
    "ready_p99_ms": ("≤ 250", lambda v: v <= 250),
    "rss_mib_10k": ("≤ 40", lambda v: v <= 40),
    "rss_mib_10k_at_rest": ("≤ 40", lambda v: v <= 40),
    "cpu_ms_per_payment": ("≤ 1", lambda v: v <= 1),
}

ORDER = [
    "profile", "load_average_start", "load_average_end", "binary_mib", "start_ms",
    "payments_per_second", "rate_limited", "wall_s_1_account", "create_s_1_account",
    "cpu_ms_per_payment", "kube_requests_per_payment", "apiserver_ms_per_request", "rss_mib_idle", "rss_mib_peak_burst",
    "accounts", "payments_per_second_5_accounts", "per_account_payments_per_second", "wall_s_5_accounts",
    "ready_p50_ms", "ready_p99_ms", "objects_cached", "rss_mib_10k", "rss_mib_10k_at_rest", "rss_mib_peak",
    "tccli_payments_per_second", "tccli_cpu_ms_per_payment",
    "sdk_payments_per_second", "sdk_loop_payments_per_second", "sdk_cpu_ms_per_payment",
    "errors",
]


def ratios(r):
    """Ours beside the peers: how many times their payments per second, and their CPU per payment
    over ours."""
    out = {}
    for peer in ("tccli", "sdk"):
        pps, cpu = r.get(f"{peer}_payments_per_second"), r.get(f"{peer}_cpu_ms_per_payment")
        if pps and r.get("payments_per_second"):
            out[f"payments_per_second_vs_{peer}"] = round(r["payments_per_second"] / pps, 1)
        if pps and r.get("payments_per_second_5_accounts"):
            out[f"payments_per_second_5_accounts_vs_{peer}"] = round(r["payments_per_second_5_accounts"] / pps, 1)
        if cpu and r.get("cpu_ms_per_payment"):
            out[f"{peer}_cpu_per_payment_vs_ours"] = round(cpu / r["cpu_ms_per_payment"], 1)
    return out


def fmt(v):
    if isinstance(v, dict):
        return ", ".join(f"{k} {fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(fmt(x) for x in v)
    return "-" if v is None else str(v)


def print_table(r):
    print(f"{'figure':34} {'value':44} goal")
    keys = [k for k in ORDER if k in r] + [k for k in r if k not in ORDER and k not in ("settings", "ratios")]
    for k in keys:
        goal = ""
        if k in GOALS and isinstance(r[k], (int, float)):
            text, ok = GOALS[k]
            goal = f"{text} ({'met' if ok(r[k]) else 'MISSED'})"
        print(f"{k:34} {fmt(r[k]):44} {goal}")
    for k, v in r.get("ratios", {}).items():
        print(f"{k:34} {v}x")


def write(r, path):
    with open(path, "w") as f:
        json.dump(r, f, indent=2)
