"""Small helpers shared by the benchmark's parts: HTTP, /proc readings, charge-rate arithmetic."""

import json
import os
import shlex
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUTDIR = os.path.join(ROOT, "target", "bench")
# The sandbox's limit per account and action and the latency fault on every request (issue 12).
RATE = 20
LATENCY_MS = 50


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cluster_env():
    """The local control plane's KUBECONFIG and kubectl, unless the caller set them."""
    if os.environ.get("KUBECONFIG"):
        return
    out = subprocess.run([os.path.join(ROOT, "scripts/local-cluster"), "env"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("export "):
            k, v = line[len("export "):].split("=", 1)
            os.environ[k] = shlex.split(v)[0] if v else ""


def kubectl():
    return os.environ.get("KUBECTL", "kubectl")


_TLS = {"ctx": None}


def trust(ca_file):
    """Makes http() trust the sandbox's CA (its HTTPS listener has a fresh self-signed one)."""
    _TLS["ctx"] = ssl.create_default_context(cafile=ca_file)


def http(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    ctx = _TLS["ctx"] if url.startswith("https:") else None
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
        raw = r.read()
    return json.loads(raw) if raw and raw[:1] in (b"{", b"[") else raw.decode()


def cpu_ms(pid):
    """user + system CPU of a live process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def minor_faults(pid):
    """Minor page faults of a live process so far (each a page mapped for it: new heap or mmap pages)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def machine_jiffies():
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v) - idle, sum(v)


def cpu_by_process(names):
    """user + system CPU ms of every live process whose command name is in `names`, summed per name."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
            if name in names:
                out[name] = out.get(name, 0) + cpu_ms(pid)
        except OSError:
            pass
    return out


def mem_mib(pid, key="VmRSS"):
    """A /proc/PID/status memory figure (VmRSS, VmHWM) in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def load_average():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def epoch(ts):
    return time.mktime(time.strptime(ts, "%Y-%m-%d %H:%M:%S"))


def rate_from_times(times):
    """Charges per second from second-resolution charge times: the whole seconds strictly inside the
    run, so a partly used first and last second do not dilute the sustained rate."""
    if len(times) < 2:
        return None
    secs = sorted(times)
    first, last = secs[0], secs[-1]
    if last - first < 3:
        return round(len(secs) / max(1, last - first + 1), 2)
    inner = [t for t in secs if first < t < last]
    return round(len(inner) / (last - first - 1), 2)


def run_with_rusage(cmd, env=None, timeout=300):
    """Runs cmd; returns (exit code, stdout, stderr, wall s, CPU ms): the CPU is user + system of the
    child and its waited-for descendants, from wait4's rusage."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), wall, (ru.ru_utime + ru.ru_stime) * 1000
