"""The apiserver through `kubectl proxy` (plain HTTP on loopback), and the objects the benchmark makes."""

import json
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from .common import free_port, http, kubectl, log

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
    ("POST", "paymentreceipts", ""): "receipt create",
    ("PATCH", "paymentreceipts", ""): "receipt settle",
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

    def count_dps(self, ns):
        """Counted a page at a time: one LIST of thousands of objects times out on a busy machine."""
        n, cont = 0, ""
        while True:
            page = http("GET", f"{self.dp_path(ns)}?limit=500&continue={cont}", timeout=120)
            n += len(page["items"])
            cont = page["metadata"].get("continue")
            if not cont:
                return n

    def delete_namespaces(self, namespaces, timeout):
        """Deletes them and waits until they are gone (their DealPayments' finalizers are released by
        the operator, which must still run)."""
        subprocess.run([kubectl(), "delete", "namespace", "--wait=false", *namespaces],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        left = list(namespaces)
        while left and time.monotonic() < deadline:
            time.sleep(1)
            left = [ns for ns in left if subprocess.run(
                [kubectl(), "get", "namespace", ns], capture_output=True).returncode == 0]
        if left:
            log(f"namespaces still terminating after {timeout} s: {' '.join(left)}")

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

    def operator_requests(self):
        """The apiserver's counts of the requests listed in OPERATOR_REQUESTS (all codes), and the
        seconds it spent on them (`_seconds`: from its latency histogram's sum and count)."""
        counts = dict.fromkeys(OPERATOR_REQUESTS.values(), 0)
        counts.update(_seconds=0.0, _timed=0)
        for line in http("GET", self.base + "/metrics", timeout=60).splitlines():
            metric = line.split("{", 1)[0]
            if metric not in ("apiserver_request_total", "apiserver_request_duration_seconds_sum",
                              "apiserver_request_duration_seconds_count"):
                continue
            labels = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.rindex("}")].split(","))
            labels = {k: v.strip('"') for k, v in labels.items()}
            key = (labels.get("verb"), labels.get("resource"), labels.get("subresource", ""))
            if key not in OPERATOR_REQUESTS:
                continue
            value = float(line.rsplit(" ", 1)[1])
            if metric == "apiserver_request_total":
                counts[OPERATOR_REQUESTS[key]] += int(value)
            elif metric.endswith("_sum"):
                counts["_seconds"] += value
            else:
                counts["_timed"] += int(value)
        return counts


class ReadyWatch:
    """Watches DealPayments in some namespaces from now on and notes when each first shows Ready
    (monotonic time), so phases await readiness instead of polling LISTs."""

    def __init__(self, kube, namespaces):
        self.kube = kube
        self.ready_at = {}  # (namespace, name) -> time.monotonic()
        self.cond = threading.Condition()
        self.started = threading.Barrier(len(namespaces) + 1)
        for ns in namespaces:
            rv = http("GET", kube.dp_path(ns) + "?limit=1")["metadata"]["resourceVersion"]
            threading.Thread(target=self._watch, args=(ns, rv), daemon=True).start()
        self.started.wait(60)

    def _note(self, ns, obj):
        key = (ns, obj.get("metadata", {}).get("name", ""))
        if key not in self.ready_at and ready(obj):
            with self.cond:
                self.ready_at[key] = time.monotonic()
                self.cond.notify_all()

    def _relist(self, ns):
        """After a watch gap the apiserver may answer 410 (the CRD watch cache is short): what became
        Ready meanwhile is noted now (a little late), and watching resumes from the list."""
        cont = ""
        while True:
            page = http("GET", f"{self.kube.dp_path(ns)}?limit=500&continue={cont}", timeout=120)
            for obj in page["items"]:
                self._note(ns, obj)
            cont = page["metadata"].get("continue")
            if not cont:
                return page["metadata"]["resourceVersion"]

    def _watch(self, ns, rv):
        first = True
        while True:
            url = self.kube.dp_path(ns) + f"?watch=1&resourceVersion={rv}&timeoutSeconds=1800"
            try:
                if rv is None:
                    rv = self._relist(ns)
                    continue
                with urllib.request.urlopen(url, timeout=1900) as r:
                    if first:
                        first = False
                        self.started.wait(60)
                    for line in r:
                        ev = json.loads(line)
                        if ev.get("type") == "ERROR":
                            log(f"watch of {ns}: {ev.get('object', {}).get('message')}; listing again")
                            rv = None
                            break
                        obj = ev.get("object", {})
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        if ev.get("type") in ("ADDED", "MODIFIED"):
                            self._note(ns, obj)
            except OSError as e:
                if self.kube.proc.poll() is not None:
                    return  # the run is over: kubectl proxy stopped
                log(f"watch of {ns} ended ({e}); watching again from {rv}")
                time.sleep(1)

    def wait(self, names, timeout):
        """Returns when every (namespace, name) of names has been seen Ready."""
        names = list(names)
        with self.cond:
            if not self.cond.wait_for(lambda: all(k in self.ready_at for k in names), timeout):
                missing = sum(1 for k in names if k not in self.ready_at)
                raise SystemExit(f"{missing} of {len(names)} DealPayments not Ready within {timeout} s")
