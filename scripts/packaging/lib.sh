# shellcheck shell=bash
# scripts/packaging-check's harness: settings, one PASS/FAIL/SKIP line per check, helm and the
# selection of rendered documents. Sourced first.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${DEALPAY_CACHE:-/var/cache/dealpay}"
OUT="$REPO/target/packaging"
CHART="$REPO/charts/dealpay-operator"
CRD_FILE="$REPO/crds/billing.dealpay.dev_dealpayments.yaml"
NONDEFAULT="$CHART/ci/nondefault-values.yaml"
RELEASE=dealpay-operator
RELEASE_NS=dealpay-system
HELM="$CACHE/helm/helm"
VENV="$CACHE/packaging-venv"

START=$SECONDS
RESULTS=()
FAILED=0
CLEANUP_PIDS=()

log() { echo "[packaging-check] $*" >&2; }

record() { # STATUS NAME [DETAIL]
  local line="$1 $2${3:+ ($3)}"
  RESULTS+=("$line")
  echo "$line"
  [[ $1 == FAIL ]] && FAILED=$((FAILED + 1))
  return 0
}

# check NAME CMD...: CMD's output goes to $OUT/logs/NAME.log; PASS on exit 0, else FAIL with the
# log's tail.
check() {
  local name=$1; shift
  local logf="$OUT/logs/$name.log" t0=$SECONDS
  if "$@" >"$logf" 2>&1; then
    record PASS "$name" "$((SECONDS - t0))s"
    return 0
  fi
  record FAIL "$name" "$((SECONDS - t0))s, log $logf"
  tail -n 25 "$logf" | sed 's/^/    | /'
  return 1
}

expect_fail() { # NAME CMD...: PASS when CMD fails
  local name=$1; shift
  local logf="$OUT/logs/$name.log"
  if "$@" >"$logf" 2>&1; then
    record FAIL "$name" "succeeded but must fail; log $logf"
    return 1
  fi
  record PASS "$name"
}

skip() { record SKIP "$1" "$2"; }

cleanup() { # stop what the checks started: TERM, and KILL after 15 s (a watchdog, not a wait)
  local pid dog
  for pid in "${CLEANUP_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || continue
    ( sleep 15; kill -KILL "$pid" ) >/dev/null 2>&1 &
    dog=$!
    wait "$pid" 2>/dev/null
    kill "$dog" 2>/dev/null
  done
  CLEANUP_PIDS=()
  return 0
}

summary() {
  local pass fail skipped
  pass=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^PASS')
  fail=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^FAIL')
  skipped=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^SKIP')
  echo
  echo "==== packaging-check summary ($((SECONDS - START))s) ===="
  printf '%s\n' "${RESULTS[@]}"
  echo "packaging-check: $pass passed, $fail failed, $skipped skipped"
  [[ $FAILED -eq 0 ]]
}

# helm, without the warning about files/crd.yaml being a symlink (on purpose: it is crds/'s file)
helm_q() { "$HELM" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }

render() { # OUTFILE [helm template args...]
  local out=$1; shift
  helm_q template "$RELEASE" "$CHART" --namespace "$RELEASE_NS" "$@" >"$out"
}

# docs_from [!]REGEX <RENDERED: the documents of `helm template` output whose "# Source:" template
# path matches REGEX (with !: does not match); helm heads each document with it. Fails when none is.
docs_from() {
  awk -v re="$1" '
    BEGIN { neg = (substr(re, 1, 1) == "!"); if (neg) re = substr(re, 2) }
    function flush() { if (keep) { printf "---\n%s", doc; n++ } doc = ""; keep = 0 }
    /^---$/ { flush(); next }
    /^# Source: / { keep = (($3 ~ re) != neg) }
    { doc = doc $0 "\n" }
    END { flush(); exit (n ? 0 : 1) }'
}

# select_to OUT REGEX RENDERED: docs_from into OUT, and list what was selected
select_to() {
  docs_from "$2" <"$3" >"$1" || { echo "no document of $3 comes from a template matching $2"; return 1; }
  echo "selected: $(sed -n 's/^kind: //p' "$1" | tr '\n' ' ')"
}
