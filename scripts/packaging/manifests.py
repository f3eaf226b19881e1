#!/usr/bin/env python3
"""Helpers for scripts/packaging-check: read `helm template` output and check it.

Subcommands (each prints what it found and exits non-zero on a failed check):
  select FILE OUT [--kinds K,K] [--exclude-groups G,G]
      write the documents of FILE whose kind is in --kinds (default: all) and whose API group
      is not in --exclude-groups to OUT (a YAML stream); prints the kinds written.
  crd-equal RENDERED CRDFILE [--keep yes|no|any]
      the CustomResourceDefinition in RENDERED equals CRDFILE, except for the labels and
      annotations the chart adds to its metadata; --keep says whether the
      helm.sh/resource-policy: keep annotation must be there.
  no-crd RENDERED
      RENDERED holds no CustomResourceDefinition.
  deployment RENDERED --src SRC [--replicas N]
      the Deployment runs `dealpay run` with leader election, probes, restricted security, ...,
      and every DEALPAY_* variable it sets is read by a flag in SRC (drift between chart and binary);
      with --defaults, the chart's default values equal the flags' defaults (but intended overrides)
  kinds RENDERED EXPECTED
      the multiset of kinds in RENDERED is exactly EXPECTED (comma-separated, Kind or Kind*N).
  rbac RENDERED MODE
      the rules are exactly the least-privilege ones (MODE cluster or namespaced).

Needs PyYAML (the packaging venv has it: kubernetes-validate depends on it).
"""

import argparse
import collections
import pathlib
import re
import sys

import yaml

OPERATOR_RULES = [
    (("billing.dealpay.dev",), ("dealpayments",), ("get", "list", "watch", "patch")),
    (("billing.dealpay.dev",), ("dealpayments/status",), ("get", "patch", "update")),
    (("events.k8s.io",), ("events",), ("create", "patch")),
    (("",), ("events",), ("create", "patch")),
    (("",), ("secrets",), ("get", "list", "watch")),
]
LEASE_RULES = [
    (("coordination.k8s.io",), ("leases",), ("get", "list", "watch", "create", "update", "patch")),
]
CHART_METADATA_KEYS = {"labels", "annotations"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def group_of(doc):
    api = doc.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def fail(msg):
    print(f"  error: {msg}")
    return 1


def only(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    return found


def cmd_select(a):
    docs = load(a.file)
    kinds = set(a.kinds.split(",")) if a.kinds else None
    groups = set(a.exclude_groups.split(",")) if a.exclude_groups else set()
    out = [d for d in docs if (kinds is None or d.get("kind") in kinds) and group_of(d) not in groups]
    with open(a.out, "w", encoding="utf-8") as f:
        yaml.safe_dump_all(out, f, sort_keys=False)
    print("  " + " ".join(f"{d['kind']}/{d['metadata']['name']}" for d in out))
    return 0 if out else fail("no document selected")


def cmd_crd_equal(a):
    crds = only(load(a.rendered), "CustomResourceDefinition")
    if len(crds) != 1:
        return fail(f"expected 1 CustomResourceDefinition, found {len(crds)}")
    rendered = crds[0]
    expected = load(a.crdfile)
    if len(expected) != 1:
        return fail(f"{a.crdfile}: expected one document")
    expected = expected[0]
    rc = 0
    meta = dict(rendered.get("metadata", {}))
    annotations = meta.get("annotations") or {}
    keep = annotations.get("helm.sh/resource-policy") == "keep"
    if a.keep == "yes" and not keep:
        rc = fail("helm.sh/resource-policy: keep is missing")
    if a.keep == "no" and keep:
        rc = fail("helm.sh/resource-policy: keep is set")
    # GitOps prune protection comes with keep: Argo CD and Flux must not delete the CRD either.
    gitops = {
        "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
        "kustomize.toolkit.fluxcd.io/prune": "disabled",
    }
    for k, v in gitops.items():
        if keep and annotations.get(k) != v:
            rc = fail(f"CRD annotation {k}: {v} is missing")
        if a.keep == "no" and k in annotations:
            rc = fail(f"CRD annotation {k} is set without keep")
    labels = meta.get("labels") or {}
    if labels.get("app.kubernetes.io/managed-by") != "Helm":
        rc = fail("CRD lacks the chart's labels")
    for k in CHART_METADATA_KEYS:
        if k in (expected.get("metadata") or {}):
            rc = fail(f"{a.crdfile} has metadata.{k}; the chart's template adds its own")
        meta.pop(k, None)
    rendered = dict(rendered, metadata=meta)
    if rendered != expected:
        rc = fail("the chart's CRD differs from " + a.crdfile)
        diff_paths(expected, rendered, "")
    else:
        print(f"  CRD {meta.get('name')} identical to {a.crdfile} (but chart labels/annotations)")
    return rc


def diff_paths(x, y, path, limit=[20]):
    if limit[0] <= 0:
        return
    if isinstance(x, dict) and isinstance(y, dict):
        for k in sorted(set(x) | set(y)):
            if k not in x or k not in y:
                limit[0] -= 1
                print(f"    {path}.{k}: only in {'rendered' if k in y else 'crds/'}")
            else:
                diff_paths(x[k], y[k], f"{path}.{k}")
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (p, q) in enumerate(zip(x, y)):
            diff_paths(p, q, f"{path}[{i}]")
    elif x != y:
        limit[0] -= 1
        print(f"    {path}: crds/ {x!r} != rendered {y!r}")


def cmd_no_crd(a):
    n = len(only(load(a.rendered), "CustomResourceDefinition"))
    return fail(f"{n} CustomResourceDefinition rendered") if n else 0


def env_vars_in_source(src):
    """Every `env = "DEALPAY_..."` of a clap flag under src/."""
    found = set()
    for path in pathlib.Path(src).rglob("*.rs"):
        found.update(re.findall(r'env\s*=\s*"(DEALPAY_[A-Z0-9_]+)"', path.read_text(encoding="utf-8")))
    if not found:
        raise SystemExit(f"no DEALPAY_ environment variables found under {src}")
    return found


# Chart defaults that differ from the binary's on purpose.
INTENTIONAL_DEFAULT_OVERRIDES = {
    "DEALPAY_LOG_FORMAT": "json logs in a cluster",
    "DEALPAY_LEASE_NAME": "the release's full name, so that two releases never share a Lease",
}


def string_consts_in_source(src):
    """NAME -> value of every `const NAME: &str = "...";` under src/ (for defaults given by constant)."""
    out = {}
    for path in pathlib.Path(src).rglob("*.rs"):
        for name, value in re.findall(r'const\s+([A-Z][A-Z0-9_]*)\s*:\s*&(?:\'static\s+)?str\s*=\s*"([^"]*)"\s*;',
                                      path.read_text(encoding="utf-8")):
            out[name] = value
    return out


def flag_defaults_in_source(src):
    """env var -> default written in the clap attribute (default_value_t = X, default_value = "X", or
    default_value = path::to::CONST, resolved to the string constant). A default that cannot be read
    fails: a flag must not escape the chart-vs-binary comparison because its default is a constant."""
    out = {}
    consts = string_consts_in_source(src)
    attr = re.compile(r'#\[arg\(([^\]]*?env\s*=\s*"(DEALPAY_[A-Z0-9_]+)"[^\]]*?)\)\]', re.S)
    for path in pathlib.Path(src).rglob("*.rs"):
        for body, name in attr.findall(path.read_text(encoding="utf-8")):
            m = re.search(r'default_value_t\s*=\s*([^,)\s]+)', body) or re.search(r'default_value\s*=\s*"([^"]*)"', body)
            if m:
                out[name] = m.group(1)
                continue
            m = re.search(r'default_value\s*=\s*((?:[a-z_]+::)*)([A-Z][A-Z0-9_]*)\b', body)
            if m:
                if m.group(2) not in consts:
                    raise SystemExit(f"{path}: default of {name} is {m.group(1)}{m.group(2)}, no string const of that name")
                out[name] = consts[m.group(2)]
    return out


def same_value(chart, binary):
    try:
        return float(chart) == float(binary)
    except ValueError:
        return chart.lower() == binary.lower()


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def cmd_deployment(a):
    deps = only(load(a.rendered), "Deployment")
    if len(deps) != 1:
        return fail(f"expected 1 Deployment, found {len(deps)}")
    d = deps[0]
    spec = d["spec"]
    pod = spec["template"]["spec"]
    errors = []

    def want(cond, what):
        if not cond:
            errors.append(what)

    want(spec.get("replicas") == a.replicas, f"replicas {spec.get('replicas')} != {a.replicas}")
    want(pod.get("automountServiceAccountToken") is True, "automountServiceAccountToken must be true")
    want(pod.get("terminationGracePeriodSeconds") == 30, "terminationGracePeriodSeconds must be 30")
    psc = pod.get("securityContext", {})
    want(psc.get("runAsNonRoot") is True, "pod runAsNonRoot")
    want(psc.get("runAsUser") == 65532, "pod runAsUser 65532")
    want((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "pod seccomp RuntimeDefault")
    cs = pod.get("containers", [])
    want(len(cs) == 1, "one container")
    c = cs[0]
    want(c.get("args") == ["run"] and "command" not in c, "args [run], the image's ENTRYPOINT")
    sc = c.get("securityContext", {})
    want(sc.get("runAsNonRoot") is True, "container runAsNonRoot")
    want(sc.get("runAsUser") == 65532, "container runAsUser 65532")
    want(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    want(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
    want(sc.get("privileged") in (None, False), "not privileged")
    want((sc.get("capabilities") or {}).get("drop") == ["ALL"], "capabilities drop [ALL]")
    want(not (sc.get("capabilities") or {}).get("add"), "no capabilities added")
    want((sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "container seccomp RuntimeDefault")
    ports = {p["name"]: p for p in c.get("ports", [])}
    want(ports.get("metrics", {}).get("containerPort") == 8080, "port metrics 8080")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        hg = (c.get(probe) or {}).get("httpGet") or {}
        want(hg.get("path") == path and hg.get("port") == "metrics", f"{probe} GET {path} on port metrics")
    res = c.get("resources") or {}
    want(res.get("requests") and res.get("limits"), "resources requests and limits")
    env = env_of(c)
    want(env.get("DEALPAY_LEADER_ELECTION", {}).get("value") == "true", "DEALPAY_LEADER_ELECTION=true")
    want(
        env.get("DEALPAY_IDENTITY", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
        "DEALPAY_IDENTITY from the pod name",
    )
    want(env.get("DEALPAY_METRICS_ADDR", {}).get("value") == "0.0.0.0:8080", "DEALPAY_METRICS_ADDR")
    for name in ("DEALPAY_ENDPOINT", "DEALPAY_RATE", "DEALPAY_CONCURRENCY", "DEALPAY_LOG", "DEALPAY_LOG_FORMAT",
                 "DEALPAY_LEASE_NAME", "DEALPAY_LEASE_NAMESPACE", "DEALPAY_LEASE_DURATION"):
        want(name in env, f"env {name}")
    ca = env.get("DEALPAY_CA_FILE", {}).get("value")
    if ca:
        mounts = c.get("volumeMounts", [])
        want(any(ca.startswith(m["mountPath"] + "/") and m.get("readOnly") for m in mounts),
             "DEALPAY_CA_FILE lies in a read-only mount")
    known = env_vars_in_source(a.src)
    if a.defaults:
        defaults = flag_defaults_in_source(a.src)
        for name, e in env.items():
            if "value" not in e or name not in defaults or name in INTENTIONAL_DEFAULT_OVERRIDES:
                continue
            want(same_value(e["value"], defaults[name]),
                 f"chart default {name}={e['value']!r} differs from the binary's default {defaults[name]!r}")
    unknown = [n for n in env if n.startswith("DEALPAY_") and n not in known]
    want(not unknown, f"DEALPAY_ variables that no flag in {a.src} reads: {unknown}")
    labels = d["metadata"].get("labels", {})
    for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
              "app.kubernetes.io/managed-by", "helm.sh/chart"):
        want(k in labels, f"label {k}")
    for e in errors:
        fail(e)
    if not errors:
        print(f"  Deployment {d['metadata']['name']}: {len(env)} env vars, restricted security, probes ok")
    return 1 if errors else 0


def parse_expected(s):
    out = collections.Counter()
    for item in s.split(","):
        kind, _, n = item.partition("*")
        out[kind] += int(n or 1)
    return out


def cmd_kinds(a):
    got = collections.Counter(d.get("kind") for d in load(a.rendered))
    want = parse_expected(a.expected)
    if got != want:
        return fail(f"kinds {dict(got)} != expected {dict(want)}")
    print("  " + ", ".join(f"{k}*{n}" for k, n in sorted(got.items())))
    return 0


def norm_rules(rules):
    out = set()
    for r in rules or []:
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                for v in r.get("verbs", []):
                    out.add((g, res, v, tuple(r.get("resourceNames") or ())))
    return out


def expand(spec):
    return {(g, r, v, ()) for gs, rs, vs in spec for g in gs for r in rs for v in vs}


def cmd_rbac(a):
    docs = load(a.rendered)
    errors = []
    roles = only(docs, "Role")
    croles = only(docs, "ClusterRole")
    bindings = only(docs, "RoleBinding") + only(docs, "ClusterRoleBinding")
    op = expand(OPERATOR_RULES)
    lease = expand(LEASE_RULES)
    if a.mode == "cluster":
        if len(croles) != 1:
            errors.append(f"expected 1 ClusterRole, found {len(croles)}")
        elif norm_rules(croles[0]["rules"]) != op:
            errors.append(f"ClusterRole rules {sorted(norm_rules(croles[0]['rules']))} != {sorted(op)}")
        others = [r for r in roles if norm_rules(r["rules"]) != lease]
        if others:
            errors.append("unexpected Roles: " + ", ".join(r["metadata"]["name"] for r in others))
    else:
        if croles or only(docs, "ClusterRoleBinding"):
            errors.append("namespaced mode must create nothing cluster-wide")
        for r in roles:
            rules = norm_rules(r["rules"])
            extra = {x for x in rules if x[3]}  # resourceNames-scoped (default-credentials Secret)
            if rules - extra not in (op, lease, set()):
                errors.append(f"Role {r['metadata']['namespace']}/{r['metadata']['name']} has rules {sorted(rules)}")
            for x in extra:
                if x[:3] != ("", "secrets", "get"):
                    errors.append(f"Role {r['metadata']['name']}: unexpected named rule {x}")
    lease_roles = [r for r in roles if norm_rules(r["rules"]) == lease]
    if len(lease_roles) != 1:
        errors.append(f"expected 1 lease Role, found {len(lease_roles)}")
    for b in bindings:
        subj = b.get("subjects", [])
        if len(subj) != 1 or subj[0].get("kind") != "ServiceAccount":
            errors.append(f"{b['kind']} {b['metadata']['name']}: subjects {subj}")
    for e in errors:
        fail(e)
    if not errors:
        print(f"  {len(croles)} ClusterRole, {len(roles)} Role, {len(bindings)} bindings: least privilege as specified")
    return 1 if errors else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("select")
    s.add_argument("file")
    s.add_argument("out")
    s.add_argument("--kinds")
    s.add_argument("--exclude-groups")
    s.set_defaults(fn=cmd_select)
    s = sub.add_parser("crd-equal")
    s.add_argument("rendered")
    s.add_argument("crdfile")
    s.add_argument("--keep", choices=["yes", "no", "any"], default="any")
    s.set_defaults(fn=cmd_crd_equal)
    s = sub.add_parser("no-crd")
    s.add_argument("rendered")
    s.set_defaults(fn=cmd_no_crd)
    s = sub.add_parser("deployment")
    s.add_argument("rendered")
    s.add_argument("--replicas", type=int, default=1)
    s.add_argument("--src", required=True, help="the operator's src/ (its clap flags name the env vars)")
    s.add_argument("--defaults", action="store_true",
                   help="the default values: every value the chart sets equals the flag's own default")
    s.set_defaults(fn=cmd_deployment)
    s = sub.add_parser("kinds")
    s.add_argument("rendered")
    s.add_argument("expected")
    s.set_defaults(fn=cmd_kinds)
    s = sub.add_parser("rbac")
    s.add_argument("rendered")
    s.add_argument("mode", choices=["cluster", "namespaced"])
    s.set_defaults(fn=cmd_rbac)
    a = p.parse_args()
    sys.exit(a.fn(a))


if __name__ == "__main__":
    main()
