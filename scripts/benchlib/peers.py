"""The tools a user would pay with instead, on the same sandbox: a `tccli billing PayDeals` loop and a
sequential tencentcloud-sdk-python script. CPU is the child's rusage (user + system)."""

import json
import os
import re
import subprocess

from .common import OUTDIR, ROOT, log, run_with_rusage
from .phases import check_ledger

CACHE = os.environ.get("DEALPAY_CACHE", "/var/cache/dealpay")
VENV = os.path.join(CACHE, "venv")


def ensure_venv(install):
    """The virtualenv scripts/tccli-check installs (same pinned versions and marker); None without it."""
    with open(os.path.join(ROOT, "scripts/tccli-check")) as f:
        text = f.read()
    tccli_v = re.search(r"^TCCLI_VERSION=(\S+)", text, re.M).group(1)
    sdk_v = re.search(r"^SDK_VERSION=(\S+)", text, re.M).group(1)
    marker = os.path.join(VENV, f".dealpay-tccli-{tccli_v}-sdk-{sdk_v}")
    if not os.path.exists(marker):
        if not install:
            return None
        log(f"installing tccli {tccli_v} and tencentcloud-sdk-python {sdk_v} into {VENV}")
        os.makedirs(CACHE, exist_ok=True)
        if not os.path.exists(os.path.join(VENV, "bin/python")):
            subprocess.run([os.environ.get("PYTHON", "python3"), "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin/pip"), "install", "--quiet", "--disable-pip-version-check",
                        f"tccli=={tccli_v}", f"tencentcloud-sdk-python=={sdk_v}"], check=True)
        open(marker, "w").close()
    return VENV


def peer_env(sandbox):
    """tccli hands certifi's bundle to requests itself (REQUESTS_CA_BUNDLE is ignored): a
    sitecustomize on PYTHONPATH points certifi at a bundle with the sandbox CA, for these children
    only, so the shared virtualenv is never modified. HOME is empty: no real tccli profile."""
    site = os.path.join(OUTDIR, "peer-site")
    os.makedirs(os.path.join(site, "home"), exist_ok=True)
    certifi_pem = subprocess.run([os.path.join(VENV, "bin/python"), "-c", "import certifi; print(certifi.where())"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    bundle = os.path.join(site, "ca-bundle.pem")
    with open(bundle, "w") as out:
        for path in (certifi_pem, sandbox.ca):
            with open(path) as f:
                out.write(f.read().rstrip("\n") + "\n")
    with open(os.path.join(site, "sitecustomize.py"), "w") as f:
        f.write("import certifi\n"
                f"certifi.where = lambda: {bundle!r}\n")
    env = dict(os.environ, HOME=os.path.join(site, "home"), PYTHONPATH=site)
    for k in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_TOKEN"):
        env.pop(k, None)
    return env, bundle


def tccli_loop(sandbox, env, account, orders):
    uin, secret_id, secret_key = account
    wall = cpu = 0.0
    for oid in orders:
        rc, out, err, w, c = run_with_rusage(
            [os.path.join(VENV, "bin/tccli"), "billing", "PayDeals", "--endpoint", sandbox.host_port,
             "--region", "ap-guangzhou", "--secretId", secret_id, "--secretKey", secret_key,
             "--OrderIds", json.dumps([oid])], env=env)
        if rc != 0 or json.loads(out).get("OrderIds") != [oid]:
            raise SystemExit(f"tccli PayDeals {oid}: exit {rc}: {out[-300:]} {err[-300:]}")
        wall += w
        cpu += c
    check_ledger(sandbox, {o: uin for o in orders}, "tccli")
    return {"payments_per_second": round(len(orders) / wall, 2),
            "cpu_ms_per_payment": round(cpu / len(orders), 1)}


def sdk_script(sandbox, env, bundle, account, orders):
    uin, secret_id, secret_key = account
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk_pay.py")
    rc, out, err, wall, cpu = run_with_rusage(
        [os.path.join(VENV, "bin/python"), script, sandbox.host_port, bundle, secret_id, secret_key, *orders],
        env=env)
    if rc != 0:
        raise SystemExit(f"SDK script: exit {rc}: {err[-500:]}")
    loop_s = json.loads(out.strip().splitlines()[-1])["loop_s"]
    check_ledger(sandbox, {o: uin for o in orders}, "sdk")
    return {"payments_per_second": round(len(orders) / wall, 2),
            "loop_payments_per_second": round(len(orders) / loop_s, 2),
            "cpu_ms_per_payment": round(cpu / len(orders), 1)}


def measure(sandbox, account, tccli_orders, sdk_orders, install):
    """Both peers, or None when the virtualenv is missing and may not be installed (smoke run)."""
    if ensure_venv(install) is None:
        log(f"peers skipped: no virtualenv at {VENV} (scripts/tccli-check or a full run installs it)")
        return None
    env, bundle = peer_env(sandbox)
    log(f"peers: tccli loop, {len(tccli_orders)} orders")
    tccli = tccli_loop(sandbox, env, account, tccli_orders)
    log(f"peers: SDK script, {len(sdk_orders)} orders")
    sdk = sdk_script(sandbox, env, bundle, account, sdk_orders)
    return {"tccli": tccli, "sdk": sdk}
