# shellcheck shell=bash
# Processes of a loopback control plane (scripts/local-cluster, scripts/modern-apiserver): detached
# start, pid files, readiness waits, stop. Sourced; the caller defines STATE_DIR, HOST,
# READY_TIMEOUT, log and die.
#
# A process is "ours" only when its command line names a file under $STATE_DIR: pids are recycled
# and two control planes (or two clones' clusters) run the same binaries side by side.

proc_alive() {
  local stat
  [[ -r /proc/$1/stat ]] || return 1
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

is_ours() { # PID NAME
  local pid=$1 name=$2 args=()
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
  [[ ${#args[@]} -gt 0 && "${args[0]##*/}" == "$name" ]] || return 1
  [[ " ${args[*]} " == *"$STATE_DIR/"* ]] || return 1
  proc_alive "$pid"
}

# pid of the running NAME of this state dir: the recorded one, or (pid file lost, e.g. after a
# crash) one found in /proc, which is then recorded again.
live_pid() {
  local name=$1 pidfile="$STATE_DIR/$1.pid" pid d
  if [[ -f $pidfile ]]; then
    pid=$(<"$pidfile") || pid=""
    if is_ours "$pid" "$name"; then echo "$pid"; return 0; fi
  fi
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    if is_ours "$pid" "$name"; then
      [[ -d $STATE_DIR ]] && echo "$pid" >"$pidfile"
      echo "$pid"
      return 0
    fi
  done
  return 1
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# spawn NAME CMD...: start CMD detached (own session, no inherited fds) so that it outlives the
# script and keeps no caller's $(...) pipe or lock open; records the pid in NAME.pid.
spawn() {
  local name=$1; shift
  local logf="$STATE_DIR/$name.log"
  : >>"$logf"
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid nohup "$@" </dev/null >>"$logf" 2>&1
  ) &
  local pid=$! i
  echo "$pid" >"$STATE_DIR/$name.pid"
  # until setsid/nohup have exec'd the real binary (or it died)
  for ((i = 0; i < 40; i++)); do
    is_ours "$pid" "$name" && break
    proc_alive "$pid" || break
    sleep 0.05
  done
  if ! is_ours "$pid" "$name"; then
    tail -n 30 "$logf" >&2 || true
    die "$name exited right away (log: $logf)"
  fi
  log "started $name (pid $pid, log $logf)"
}

stop_proc() { # NAME: TERM, then KILL after 10 s; again while one is found (a restarted twin)
  local name=$1 pid i round
  for ((round = 0; round < 5; round++)); do
    pid=$(live_pid "$name") || break
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      proc_alive "$pid" || break
      sleep 0.1
    done
    if proc_alive "$pid"; then
      log "$name did not stop in 10 s, SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  done
  rm -f "$STATE_DIR/$name.pid"
}

# wait_for NAME CHECK: poll CHECK (a readiness probe: nothing to wait on but the port) until it
# passes, NAME dies, or READY_TIMEOUT runs out.
wait_for() {
  local name=$1 check=$2 logf="$STATE_DIR/$1.log" deadline=$((SECONDS + READY_TIMEOUT))
  while ! "$check"; do
    if ! live_pid "$name" >/dev/null; then
      tail -n 40 "$logf" >&2 || true
      die "$name died while starting (log: $logf)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$logf" >&2 || true
      die "$name not ready after ${READY_TIMEOUT}s (log: $logf)"
    fi
    sleep 0.25
  done
}

etcd_healthy() { curl -fsS --max-time 2 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"'; }

# start_etcd NAME-PREFIX BIN PEER-PORT: a single-member etcd in $STATE_DIR/etcd-data on $ETCD_URL
start_etcd() {
  local member=$1 bin=$2 peer="http://$HOST:$3" extra=()
  "$bin" --help 2>&1 | grep -q -- '--unsafe-no-fsync' && extra+=(--unsafe-no-fsync)
  mkdir -p "$STATE_DIR/etcd-data"
  chmod 700 "$STATE_DIR/etcd-data"
  spawn etcd "$bin" --name "$member" --data-dir "$STATE_DIR/etcd-data" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$member=$peer" --initial-cluster-state new \
    --logger zap --log-outputs stderr "${extra[@]}"
}

# take_lock FILE: serialise up/down on one state dir (scripts/test and packaging-check may both
# run `up`); the lock lives beside the state dir because `down` removes the dir.
take_lock() {
  mkdir -p "$(dirname "$1")"
  exec 8>"$1"
  if ! flock -n 8; then
    log "waiting for $1 (another up/down on $STATE_DIR is running)"
    flock 8
  fi
}
