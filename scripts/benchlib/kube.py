"""The apiserver through `kubectl proxy` (plain HTTP on loopback), and the objects the benchmark makes."""

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from .common import free_port, http, kubectl

GROUP_PATH = "/apis/billing.dealpay.dev/v1alpha1"
# Requests the operator makes, as the apiserver counts them (apiserver_request_total): the benchmark
# itself only creates and lists DealPayments, so everything here is the operator's.
OPERATOR_REQUESTS = {
    ("PATCH", "dealpayments", ""): "finalizer patch",
    ("PUT", "dealpayments", "status"): "status replace",
    ("GET", "dealpayments", "status"): "status read",
    ("GET", "secrets", ""): "Secret read",
    ("POST", "events", ""): "Event create",
    ("PATCH", "events", ""): "Event patch",
}


def ready(dp):
    for c in (dp.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


class Kube:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([kubectl(), "proxy", f"--port={self.port}", "--address=127.0.0.1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                http("GET", self.base + "/version")
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("kubectl proxy did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def dp_path(self, ns):
        return f"{self.base}{GROUP_PATH}/namespaces/{ns}/dealpayments"

    def create(self, path, obj):
        return http("POST", path, obj)

    def list_dps(self, ns):
        return http("GET", self.dp_path(ns), timeout=120)["items"]

    def namespace_with_secret(self, ns, secret_id, secret_key, uin):
        self.create(f"{self.base}/api/v1/namespaces", {"metadata": {"name": ns}})
        self.create(f"{self.base}/api/v1/namespaces/{ns}/secrets", {
            "metadata": {"name": "tencent"},
            "stringData": {"secretId": secret_id, "secretKey": secret_key, "uin": uin}})

    @staticmethod
    def dp(name, order_id):
        return {"apiVersion": "billing.dealpay.dev/v1alpha1", "kind": "DealPayment",
                "metadata": {"name": name},
                "spec": {"orderIds": [order_id], "credentials": {"secretRef": {"name": "tencent"}}}}

    def create_many(self, items):
        """items: (namespace, name, order id); 16 POSTs at a time."""
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda it: self.create(self.dp_path(it[0]), self.dp(it[1], it[2])), items))

    def wait_ready(self, groups, timeout):
        """groups: (namespace, name prefix, count); returns when every group has count Ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(sum(1 for d in self.list_dps(ns) if ready(d) and d["metadata"]["name"].startswith(p)) >= n
                   for ns, p, n in groups):
                return
            time.sleep(1)
        raise SystemExit(f"not every DealPayment was Ready within {timeout} s")

    def operator_requests(self):
        """The apiserver's counts of the requests listed in OPERATOR_REQUESTS (all codes)."""
        counts = dict.fromkeys(OPERATOR_REQUESTS.values(), 0)
        for line in http("GET", self.base + "/metrics", timeout=60).splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.rindex("}")].split(","))
            labels = {k: v.strip('"') for k, v in labels.items()}
            key = (labels.get("verb"), labels.get("resource"), labels.get("subresource", ""))
            if key in OPERATOR_REQUESTS:
                counts[OPERATOR_REQUESTS[key]] += int(float(line.rsplit(" ", 1)[1]))
        return counts
