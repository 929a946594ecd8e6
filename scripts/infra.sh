#!/usr/bin/env bash
# plantwire local infrastructure: Mosquitto, NATS, Redis, Kafka (KRaft) and a MongoDB-wire server
# (FerretDB), each a plain process on 127.0.0.1, installed and run by this script. No Docker.
#
#   scripts/infra.sh install [server...]   install what is missing (idempotent, quick when present)
#   scripts/infra.sh start   [server...]   start what is not running, wait until it answers
#   scripts/infra.sh stop    [server...]   stop by recorded pid (TERM, then KILL after a timeout)
#   scripts/infra.sh status  [server...]   one line per server; exit 1 if any is down
#   scripts/infra.sh browser               install Debian's chromium for the browser tests (test/browser)
#
# servers: mosquitto nats redis kafka mongo (default: all)
# PLANTWIRE_DATA   data, logs, pid files, generated configs (default <repo>/.data)
# PLANTWIRE_TOOLS  downloaded/built tools, keyed by version (default ~/.cache/plantwire)
# PLANTWIRE_MONGO  ferretdb (default) or mongod (uses a mongod found on PATH)
# PLANTWIRE_PORT_OFFSET  added to every port (default 0): a second, private stack next to the
#                  default one, e.g. for test/chaos, which kills its servers
# See docs/local-infra.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${PLANTWIRE_DATA:-$REPO/.data}"
TOOLS="${PLANTWIRE_TOOLS:-${HOME:-/tmp}/.cache/plantwire}"
MONGO_IMPL="${PLANTWIRE_MONGO:-ferretdb}"
PORT_OFFSET="${PLANTWIRE_PORT_OFFSET:-0}"
# 27017 is the highest base port and the offset must keep it below 65536.
if ! [[ "$PORT_OFFSET" =~ ^(0|[1-9][0-9]{0,4})$ ]] || [ "$PORT_OFFSET" -gt 38000 ]; then
  printf 'infra: error: PLANTWIRE_PORT_OFFSET must be an integer from 0 to 38000, got "%s"\n' "$PORT_OFFSET" >&2
  exit 2
fi
MQTT_PORT=$((1883 + PORT_OFFSET))
MQTT_WS_PORT=$((9001 + PORT_OFFSET))
NATS_PORT=$((4222 + PORT_OFFSET))
NATS_HTTP_PORT=$((8222 + PORT_OFFSET))
REDIS_PORT=$((6379 + PORT_OFFSET))
KAFKA_PORT=$((9092 + PORT_OFFSET))
KAFKA_CONTROLLER_PORT=$((9093 + PORT_OFFSET))
MONGO_PORT=$((27017 + PORT_OFFSET))
MONGO_DEBUG_PORT=$((8089 + PORT_OFFSET))
NODE="$REPO/node_modules/.bin/node"

# Go lives in /usr/local/go on these machines; Debian keeps daemons in /usr/sbin, which a normal
# user's PATH lacks.
export PATH="/usr/local/go/bin:$PATH:/usr/local/sbin:/usr/sbin:/sbin"

KAFKA_VERSION="4.1.1"
FERRETDB_VERSION="1.24.2"
# Fixed KRaft cluster id (base64url of a random 16-byte UUID, made once with
# `kafka.tools.StorageTool random-uuid`). Never change it: a data dir formatted with another id
# belongs to another cluster. Kubernetes uses the same id.
KAFKA_CLUSTER_ID="TV7LMOUOSpKB3KwD4c1jWw"

ALL_SERVERS=(mosquitto nats redis kafka mongo)

KAFKA_HOME="$TOOLS/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
# "-idfix": built with the _id lookup patch below (a build without it is not reused).
FERRETDB_HOME="$TOOLS/ferretdb-$FERRETDB_VERSION-idfix"
FERRETDB_BIN="$FERRETDB_HOME/ferretdb"

say() { printf 'infra: %s\n' "$*"; }
warn() { printf 'infra: warning: %s\n' "$*" >&2; }
fail() { printf 'infra: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
usage: scripts/infra.sh install|start|stop|status [server...] | browser
servers: ${ALL_SERVERS[*]} (default: all)
data: $DATA   tools: $TOOLS
EOF
}

# ---------------------------------------------------------------------------------------------
# per-server facts

ports_of() {
  case "$1" in
    mosquitto) echo "$MQTT_PORT $MQTT_WS_PORT" ;;
    nats) echo "$NATS_PORT $NATS_HTTP_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
    kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
    mongo) echo "$MONGO_PORT $MONGO_DEBUG_PORT" ;;
  esac
}

main_port() { local p; p="$(ports_of "$1")"; echo "${p%% *}"; }

# seconds to wait for a server to answer after launch, and for it to exit after SIGTERM
start_timeout() { case "$1" in kafka) echo 120 ;; mongo) echo 60 ;; *) echo 20 ;; esac; }
stop_timeout() { case "$1" in kafka) echo 60 ;; *) echo 20 ;; esac; }

log_of() { echo "$DATA/log/$1.log"; }
pidfile_of() { echo "$DATA/run/$1.pid"; }

# Words the command line of *our* process contains (checked literally), so a recycled pid or
# another checkout's server is never mistaken for ours.
signature_of() {
  case "$1" in
    mosquitto) echo "mosquitto|$DATA/conf/mosquitto.conf" ;;
    nats) echo "nats-server|$DATA/conf/nats.conf" ;;
    redis) echo "redis-server|127.0.0.1:$REDIS_PORT" ;; # redis rewrites its process title
    kafka) echo "kafka.Kafka|$DATA/conf/kafka.properties" ;;
    mongo)
      if [ "$MONGO_IMPL" = mongod ]; then echo "mongod|$DATA/mongod"; else echo "ferretdb|$DATA/ferretdb"; fi
      ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# process and port helpers (Linux /proc; no killing by name anywhere)

pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/stat" ] || return 1
  state="$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [ "$state" != Z ] && [ "$state" != X ]
}

pid_cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline" | sed 's/ $//'; } 2>/dev/null || true; }

pid_matches() {
  local pid="$1" server="$2" cmd sig word
  pid_alive "$pid" || return 1
  cmd="$(pid_cmdline "$pid")"
  sig="$(signature_of "$server")"
  IFS='|' read -r -a words <<<"$sig"
  for word in "${words[@]}"; do
    [[ "$cmd" == *"$word"* ]] || return 1
  done
}

# Prints the pid recorded for the server if that process is alive and is ours.
read_pidfile() {
  local f="$1"
  [ -s "$f" ] || return 0
  tr -dc '0-9' <"$f" 2>/dev/null || true
}

our_pid() {
  local server="$1" pid
  pid="$(read_pidfile "$(pidfile_of "$server")")"
  [ -n "$pid" ] || return 1
  pid_matches "$pid" "$server" || return 1
  echo "$pid"
}

port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Best effort description of who listens on a port (ss only shows other users' processes to root).
port_owner() {
  local port="$1" line pid
  if command -v ss >/dev/null 2>&1; then
    line="$(ss -ltnpH "( sport = :$port )" 2>/dev/null | head -n 1 || true)"
    pid="$(sed -nE 's/.*pid=([0-9]+).*/\1/p' <<<"$line" | head -n 1 || true)"
    if [ -n "$pid" ]; then
      echo "pid $pid: $(pid_cmdline "$pid" | cut -c1-160)"
      return
    fi
  fi
  echo "a process this user cannot see"
}

foreign_port_hint() {
  local unit
  case "$1" in
    redis) unit=redis-server ;;
    nats) unit=nats-server ;;
    mosquitto) unit=mosquitto ;;
    *) unit="" ;;
  esac
  if [ -n "$unit" ]; then
    echo "If it is the system service the Debian package started, stop and disable it ('sudo systemctl disable --now $unit', or 'sudo service $unit stop' without systemd); if it is another plantwire checkout, run that checkout's 'scripts/infra.sh stop'."
  else
    echo "If it is another plantwire checkout, run that checkout's 'scripts/infra.sh stop'."
  fi
}

tail_log() {
  local log="$1"
  if [ -s "$log" ]; then
    printf 'infra: --- last lines of %s ---\n' "$log" >&2
    tail -n 15 "$log" >&2 || true
    printf 'infra: ---\n' >&2
  fi
}

server_known() {
  local s
  for s in "${ALL_SERVERS[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

# Runs "$fn server" for each server in a subshell with errexit in force, so one failure stops
# that server only; returns 1 if any failed and names them.
for_each() {
  local fn="$1" s rc failed=()
  shift
  for s in "$@"; do
    set +e
    ("$fn" "$s")
    rc=$?
    set -e
    [ "$rc" -eq 0 ] || failed+=("$s")
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    printf 'infra: FAILED: %s\n' "${failed[*]}" >&2
    return 1
  fi
}

ensure_dirs() {
  mkdir -p "$DATA" "$DATA/log" "$DATA/run" "$DATA/conf"
}

need_node() {
  [ -x "$NODE" ] || fail "$NODE is missing: run 'npm install' in $REPO first (Node 22 comes from the 'node' devDependency; the system node cannot run .ts files)"
  local v
  v="$("$NODE" --version)"
  [[ "$v" =~ ^v([0-9]+)\.([0-9]+) ]] || fail "cannot read the version of $NODE ($v)"
  if [ "${BASH_REMATCH[1]}" -lt 22 ] || { [ "${BASH_REMATCH[1]}" -eq 22 ] && [ "${BASH_REMATCH[2]}" -lt 18 ]; }; then
    fail "$NODE is $v; Node >= 22.18 is needed to run .ts files: run 'npm install' in $REPO"
  fi
}

# ---------------------------------------------------------------------------------------------
# install

APT_UPDATED=0
apt_install() {
  [ "$#" -gt 0 ] || return 0
  command -v apt-get >/dev/null 2>&1 ||
    fail "missing packages: $* (this script installs them with apt-get on Debian/Ubuntu; install the equivalents by hand here)"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "missing packages: $*; not root and no sudo: install them as root (apt-get install $*)"
    sudo=(sudo)
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

java_major() {
  local major="" minor=""
  read -r major minor < <("$1" -version 2>&1 | sed -nE '1s/.*version "([0-9]+)(\.([0-9]+))?.*/\1 \3/p') || true
  if [ "${major:-0}" = 1 ]; then echo "${minor:-0}"; else echo "${major:-0}"; fi
}

# Prints a java >= 17, preferring JAVA_HOME, then PATH, then Debian's openjdk-17.
find_java() {
  local j
  for j in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null || true)" /usr/lib/jvm/java-*-openjdk-*/bin/java; do
    [ -n "$j" ] && [ -x "$j" ] || continue
    if [ "$(java_major "$j")" -ge 17 ]; then
      echo "$j"
      return 0
    fi
  done
  return 1
}

# binary:package pairs each server needs from Debian
apt_needs() {
  case "$1" in
    mosquitto) echo "mosquitto:mosquitto mosquitto_sub:mosquitto-clients mosquitto_pub:mosquitto-clients" ;;
    nats) echo "nats-server:nats-server" ;;
    redis) echo "redis-server:redis-server redis-cli:redis-tools" ;;
    kafka) echo "mvn:maven" ;;
    mongo) echo "" ;;
  esac
}

install_packages() {
  local s pair bin pkg missing=()
  for s in "$@"; do
    for pair in $(apt_needs "$s"); do
      bin="${pair%%:*}"
      pkg="${pair##*:}"
      command -v "$bin" >/dev/null 2>&1 && continue
      [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
    done
    if [ "$s" = kafka ] && ! find_java >/dev/null; then
      missing+=(openjdk-17-jre-headless)
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    say "Debian packages: present"
    return 0
  fi
  local t0=$SECONDS
  apt_install "${missing[@]}"
  say "Debian packages installed in $((SECONDS - t0))s: ${missing[*]}"
  # The packages' postinst may have started system daemons on our ports (on machines with an init
  # system); say so now rather than at start.
  for s in "$@"; do
    case "$s" in mosquitto | nats | redis) ;; *) continue ;; esac
    local p
    for p in $(ports_of "$s"); do
      if port_open "$p" && ! our_pid "$s" >/dev/null; then
        warn "port $p is already in use by $(port_owner "$p"); $(foreign_port_hint "$s")"
      fi
    done
  done
}

install_kafka() {
  local pom="$REPO/scripts/kafka/pom.xml" stamp tmp t0=$SECONDS
  [ -f "$pom" ] || fail "$pom is missing"
  stamp="$KAFKA_VERSION $(sha256sum "$pom" | cut -c1-64)"
  if [ -f "$KAFKA_HOME/.installed" ] && [ "$(cat "$KAFKA_HOME/.installed")" = "$stamp" ] &&
    [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    say "kafka $KAFKA_VERSION: present ($KAFKA_LIBS)"
    return 0
  fi
  find_java >/dev/null || fail "no Java >= 17 found (install openjdk-17-jre-headless)"
  command -v mvn >/dev/null 2>&1 || fail "mvn not found (install maven)"
  mkdir -p "$TOOLS"
  say "kafka $KAFKA_VERSION: resolving jars from Maven Central (first time ~30 s)"
  tmp="$(mktemp -d "$TOOLS/.kafka-$KAFKA_VERSION.XXXXXX")"
  if ! mvn -q -B -Dstyle.color=never -f "$pom" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs"; then
    rm -rf "$tmp"
    fail "mvn could not resolve Kafka $KAFKA_VERSION (network to Maven Central? see the output above)"
  fi
  [ -f "$tmp/libs/kafka_2.13-$KAFKA_VERSION.jar" ] || {
    rm -rf "$tmp"
    fail "mvn finished but kafka_2.13-$KAFKA_VERSION.jar is not among the copied jars"
  }
  echo "$stamp" >"$tmp/.installed"
  rm -rf "$KAFKA_HOME"
  mv "$tmp" "$KAFKA_HOME"
  say "kafka $KAFKA_VERSION: $(ls "$KAFKA_LIBS" | wc -l) jars in $KAFKA_LIBS ($((SECONDS - t0))s)"
}

ferretdb_ok() {
  local out
  [ -x "$FERRETDB_BIN" ] || return 1
  out="$("$FERRETDB_BIN" --version 2>/dev/null)" || return 1
  [[ $'\n'"$out"$'\n' == *$'\n'"version: v$FERRETDB_VERSION"$'\n'* ]]
}

install_ferretdb() {
  local t0=$SECONDS tmp dir gv
  if ferretdb_ok; then
    say "ferretdb $FERRETDB_VERSION: present ($FERRETDB_BIN)"
    return 0
  fi
  command -v go >/dev/null 2>&1 ||
    fail "Go is needed to build FerretDB $FERRETDB_VERSION and was not found (looked in /usr/local/go/bin and PATH). Install Go >= 1.24 from https://go.dev/dl/ (e.g. tar -C /usr/local -xzf go1.24.x.linux-amd64.tar.gz); Debian 12's golang package is too old."
  gv="$(go env GOVERSION 2>/dev/null || true)"
  if [[ "$gv" =~ ^go1\.([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -lt 21 ]; then
    fail "Go $gv is too old to build FerretDB $FERRETDB_VERSION: install Go >= 1.24 from https://go.dev/dl/"
  fi
  mkdir -p "$TOOLS"
  say "ferretdb $FERRETDB_VERSION: building with $gv (first time ~2-3 min on 2 cores)"
  tmp="$(mktemp -d "$TOOLS/.ferretdb-$FERRETDB_VERSION.XXXXXX")"
  # `go install ...@v1.24.2` builds a binary that panics at startup ("Invalid
  # build/version/version.txt"): the module zip lacks the generated version.txt. So build from a
  # copy of the module with that file written, as FerretDB's own `task gen-version` would.
  if ! dir="$(cd "$tmp" && go mod download -json "github.com/FerretDB/FerretDB@v$FERRETDB_VERSION" |
    sed -nE 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')" || [ -z "$dir" ] || [ ! -d "$dir" ]; then
    rm -rf "$tmp"
    fail "could not download the FerretDB module (Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  fi
  cp -R "$dir" "$tmp/src"
  chmod -R u+w "$tmp/src"
  printf 'v%s\n' "$FERRETDB_VERSION" >"$tmp/src/build/version/version.txt"
  # FerretDB 1.24's SQLite backend looks documents up by `_id` with the path expression
  # `_ferretdb_sjson->'$._id'`, but creates the unique _id index on `_ferretdb_sjson->"_id"`:
  # SQLite only uses an expression index for the identical expression, so every lookup by `_id`
  # scanned the whole collection (40,000 documents: 800 ms; with the patch 1.7 ms; see
  # docs/local-infra.md). The patch makes the lookup use the index's expression.
  local metadata="$tmp/src/internal/backends/sqlite/metadata/metadata.go"
  sed -i "s|IDColumn = DefaultColumn + \"->'\\\$._id'\"|IDColumn = DefaultColumn + \`->\"_id\"\`|" "$metadata"
  if ! grep -qF 'IDColumn = DefaultColumn + `->"_id"`' "$metadata"; then
    rm -rf "$tmp"
    fail "could not apply the _id lookup patch to FerretDB $FERRETDB_VERSION ($metadata changed?)"
  fi
  if ! (cd "$tmp/src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "$tmp/ferretdb" ./cmd/ferretdb); then
    rm -rf "$tmp"
    fail "building FerretDB failed (see the go output above)"
  fi
  mkdir -p "$FERRETDB_HOME"
  mv "$tmp/ferretdb" "$FERRETDB_BIN"
  rm -rf "$tmp"
  ferretdb_ok || fail "the built $FERRETDB_BIN does not report version v$FERRETDB_VERSION"
  say "ferretdb $FERRETDB_VERSION: built $FERRETDB_BIN ($((SECONDS - t0))s)"
}

cmd_install() {
  local s
  install_packages "$@"
  for s in "$@"; do
    case "$s" in
      kafka) install_kafka ;;
      mongo)
        if [ "$MONGO_IMPL" = mongod ]; then
          command -v mongod >/dev/null 2>&1 || fail "PLANTWIRE_MONGO=mongod but no mongod on PATH"
          say "mongo: using $(command -v mongod)"
        else
          install_ferretdb
        fi
        ;;
    esac
  done
  say "install done"
}

# The browser tests and the dashboard bench drive Debian's chromium through playwright-core
# (never a downloaded browser build).
install_browser() {
  if command -v chromium >/dev/null 2>&1; then
    say "chromium: present ($(command -v chromium))"
    return 0
  fi
  local t0=$SECONDS
  apt_install chromium
  say "chromium installed in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------------------------------
# readiness checks ("answers" = a protocol exchange where cheap)

ready_mosquitto() {
  port_open "$MQTT_WS_PORT" || return 1
  if command -v mosquitto_sub >/dev/null 2>&1; then
    # An anonymous CONNECT answered (refused unless MQTT_AUTH=off) proves MQTT works end to end.
    local answer
    answer="$(timeout 5 mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -i "plantwire-infra-probe-$$" -t '$SYS/broker/version' -C 1 -W 3 2>&1)" && return 0
    case "$answer" in *"not authorised"*) return 0 ;; *) return 1 ;; esac
  else
    port_open "$MQTT_PORT"
  fi
}

ready_nats() {
  # The server greets every client with an INFO line.
  timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$NATS_PORT"' && IFS= read -r -t 2 line <&3 && [[ "$line" == INFO* ]]' 2>/dev/null
}

ready_redis() {
  [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

ready_kafka() {
  # The broker port opens once the broker is up; topic creation (which needs metadata) retries.
  port_open "$KAFKA_PORT"
}

ready_mongo() {
  port_open "$MONGO_PORT" || return 1
  if [ -x "$NODE" ] && [ -d "$REPO/node_modules/mongodb" ]; then
    (cd "$REPO" && timeout 10 "$NODE" --input-type=module -e '
      import { MongoClient } from "mongodb";
      const c = new MongoClient("mongodb://127.0.0.1:'"$MONGO_PORT"'/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000");
      try { await c.db("admin").command({ ping: 1 }); } finally { await c.close(); }' >/dev/null 2>&1)
  fi
}

# Waits until the server answers. pid may be "" while a self-daemonizing server writes its pid file.
wait_ready() {
  local server="$1" pid="${2:-}" timeout log pidfile deadline t0=$SECONDS
  timeout="$(start_timeout "$server")"
  log="$(log_of "$server")"
  pidfile="$(pidfile_of "$server")"
  deadline=$((SECONDS + timeout))
  while :; do
    [ -n "$pid" ] || pid="$(read_pidfile "$pidfile")"
    if [ -n "$pid" ] && ! pid_alive "$pid"; then
      tail_log "$log"
      fail "$server exited during startup; see $log"
    fi
    if [ -n "$pid" ] && "ready_$server"; then
      pid_matches "$pid" "$server" || fail "$server answers, but pid $pid is not the expected process ($(pid_cmdline "$pid" | cut -c1-120))"
      echo "$pid" >"$pidfile"
      say "$server: up (pid $pid, port $(main_port "$server"), $((SECONDS - t0))s)"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail_log "$log"
      fail "$server did not answer on port $(main_port "$server") within ${timeout}s; see $log (it is still running as pid ${pid:-?}; 'scripts/infra.sh stop $server' stops it)"
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------
# launchers: write config, start detached (own session, stdin closed), record pid

launch_detached() {
  # usage: launch_detached server cmd args... ; records the pid in the server's pid file
  local server="$1" log pidfile
  shift
  log="$(log_of "$server")"
  pidfile="$(pidfile_of "$server")"
  printf '\n=== %s start %s ===\n' "$server" "$(date -Is)" >>"$log"
  # setsid execs in place here (a background job of a non-interactive shell is not a process
  # group leader), so $! is the server itself.
  setsid nohup "$@" >>"$log" 2>&1 </dev/null &
  echo "$!" >"$pidfile"
}

launch_nats() {
  local conf="$DATA/conf/nats.conf"
  cat >"$conf" <<EOF
# generated by scripts/infra.sh; edits are overwritten at start
host: 127.0.0.1
port: $NATS_PORT
http: "127.0.0.1:$NATS_HTTP_PORT"
EOF
  launch_detached nats nats-server -c "$conf"
}

launch_redis() {
  local dir="$DATA/redis"
  mkdir -p "$dir"
  rm -f "$(pidfile_of redis)"
  printf '\n=== redis start %s ===\n' "$(date -Is)" >>"$(log_of redis)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --pidfile "$(pidfile_of redis)" --logfile "$(log_of redis)" --dir "$dir" \
    --save "" --appendonly no >>"$(log_of redis)" 2>&1 </dev/null
  # redis writes its own pid file after daemonizing; wait_ready reads it.
}

launch_mosquitto() {
  local conf="$DATA/conf/mosquitto.conf" dir="$DATA/mosquitto" user_line=""
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    # Started as root, mosquitto switches to user `mosquitto` right after opening its listeners;
    # from then on it must be able to write its persistence directory, or it exits without a word.
    if id mosquitto >/dev/null 2>&1; then
      chown -R mosquitto: "$dir"
      if command -v runuser >/dev/null 2>&1 && ! runuser -u mosquitto -- test -w "$dir" 2>/dev/null; then
        warn "user mosquitto cannot reach $dir (a parent directory is private?); running mosquitto as root"
        user_line="user root"
      else
        user_line="user mosquitto"
      fi
    else
      user_line="user root"
    fi
  fi
  local auth
  if [ "${MQTT_AUTH:-on}" = "off" ]; then
    warn "MQTT_AUTH=off: Mosquitto lets anyone connect and use any topic (the demo switch)"
    auth="allow_anonymous true"
  else
    # Accounts and ACL come from scripts/mqtt-accounts.ts (npm start provisions them); until then
    # nobody gets in. Created here owned like the directory, readable by nobody else.
    for f in passwd acl; do
      [ -f "$dir/$f" ] || (umask 077 && : >"$dir/$f")
    done
    [ "$(id -u)" -ne 0 ] || chown --reference="$dir" "$dir/passwd" "$dir/acl"
    auth="allow_anonymous false
password_file $dir/passwd
acl_file $dir/acl"
  fi
  cat >"$conf" <<EOF
# generated by scripts/infra.sh; edits are overwritten at start
per_listener_settings false
$auth

listener $MQTT_PORT 127.0.0.1
protocol mqtt

listener $MQTT_WS_PORT 127.0.0.1
protocol websockets
socket_domain ipv4

# persistent sessions and queued QoS 1 messages survive restarts. Saved every 4 s: a SIGKILL loses
# what arrived since the last save, and the PLCs resend the last PLC_RESEND_WINDOW_MS (5 s) after a
# reconnect, so the two together cover it however far behind the preprocessor is
persistence true
persistence_location $dir/
autosave_interval 4

# the default 1000 drops QoS 1 messages queued for a slow subscriber
max_queued_messages 100000
max_inflight_messages 1000
# oversized payloads reach the preprocessor, which rejects them to the dead-letter topic itself
max_packet_size 2097152

# stderr (unbuffered; stdout would be block-buffered) is redirected to $(log_of mosquitto) by the
# script, so the unprivileged mosquitto user needs no write access to the log directory
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
log_timestamp_format %Y-%m-%dT%H:%M:%S
$user_line
EOF
  launch_detached mosquitto mosquitto -c "$conf"
}

kafka_properties() {
  cat <<EOF
# generated by scripts/infra.sh; edits are overwritten at start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DATA/kafka
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
EOF
}

kafka_log4j2() {
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by scripts/infra.sh; edits are overwritten at start -->
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="$(log_of kafka)" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.network.RequestChannel\$" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.log.LogCleaner" level="WARN"/>
  </Loggers>
</Configuration>
EOF
}

KAFKA_JVM_OPTS=(-Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true)

kafka_java() {
  local java
  java="$(find_java)" || fail "no Java >= 17 found: run 'scripts/infra.sh install kafka'"
  "$java" "${KAFKA_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$DATA/conf/kafka-log4j2.xml" \
    -cp "$KAFKA_LIBS/*" "$@"
}

launch_kafka() {
  local props="$DATA/conf/kafka.properties" dir="$DATA/kafka" meta formatted_id java
  [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] || fail "Kafka $KAFKA_VERSION is not installed: run 'scripts/infra.sh install kafka'"
  java="$(find_java)" || fail "no Java >= 17 found: run 'scripts/infra.sh install kafka'"
  mkdir -p "$dir"
  kafka_properties >"$props"
  kafka_log4j2 >"$DATA/conf/kafka-log4j2.xml"
  meta="$dir/meta.properties"
  if [ -f "$meta" ]; then
    formatted_id="$(sed -n 's/^cluster\.id=//p' "$meta")"
    if [ "$formatted_id" != "$KAFKA_CLUSTER_ID" ]; then
      fail "$dir was formatted for Kafka cluster id '$formatted_id', but this project's fixed id is '$KAFKA_CLUSTER_ID'. That data belongs to another cluster: stop Kafka and delete $dir (scripts/infra.sh stop kafka; rm -rf '$dir') to start fresh."
    fi
  else
    say "kafka: formatting $dir (cluster id $KAFKA_CLUSTER_ID)"
    kafka_java kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" -c "$props" --ignore-formatted \
      >>"$(log_of kafka)" 2>&1 </dev/null || {
      tail_log "$(log_of kafka)"
      fail "formatting Kafka storage failed; see $(log_of kafka)"
    }
  fi
  launch_detached kafka "$java" "${KAFKA_JVM_OPTS[@]}" \
    -Dlog4j2.configurationFile="$DATA/conf/kafka-log4j2.xml" -cp "$KAFKA_LIBS/*" kafka.Kafka "$props"
}

launch_mongo() {
  if [ "$MONGO_IMPL" = mongod ]; then
    command -v mongod >/dev/null 2>&1 || fail "PLANTWIRE_MONGO=mongod but no mongod on PATH"
    mkdir -p "$DATA/mongod"
    launch_detached mongo mongod --bind_ip 127.0.0.1 --port "$MONGO_PORT" --dbpath "$DATA/mongod"
  else
    ferretdb_ok || fail "FerretDB $FERRETDB_VERSION is not installed: run 'scripts/infra.sh install mongo'"
    mkdir -p "$DATA/ferretdb"
    launch_detached mongo "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$DATA/ferretdb/" \
      --state-dir="$DATA/ferretdb" --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr="127.0.0.1:$MONGO_DEBUG_PORT" \
      --telemetry=disable --log-level=info
  fi
}

create_topics() {
  need_node
  say "kafka: ensuring topics"
  # create-topics reads KAFKA_BROKERS (default 127.0.0.1:9092) like the services do
  (cd "$REPO" && if [ "$PORT_OFFSET" -ne 0 ]; then export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"; fi && "$NODE" scripts/create-topics.ts) || fail "creating Kafka topics failed (see above; broker log: $(log_of kafka))"
}

start_one() {
  local server="$1" pid p
  ensure_dirs
  if pid="$(our_pid "$server")"; then
    if "ready_$server"; then
      say "$server: already running (pid $pid, port $(main_port "$server"))"
    else
      say "$server: pid $pid is running but not answering yet; waiting"
      wait_ready "$server" "$pid"
    fi
  else
    rm -f "$(pidfile_of "$server")"
    for p in $(ports_of "$server"); do
      if port_open "$p"; then
        fail "$server: port $p is already in use by $(port_owner "$p"), not by a server of this checkout ($DATA). $(foreign_port_hint "$server")"
      fi
    done
    case "$server" in
      mosquitto) command -v mosquitto >/dev/null 2>&1 || fail "mosquitto is not installed: run 'scripts/infra.sh install mosquitto'" ;;
      nats) command -v nats-server >/dev/null 2>&1 || fail "nats-server is not installed: run 'scripts/infra.sh install nats'" ;;
      redis) command -v redis-server >/dev/null 2>&1 || fail "redis-server is not installed: run 'scripts/infra.sh install redis'" ;;
    esac
    say "$server: starting (log $(log_of "$server"))"
    "launch_$server"
    wait_ready "$server" ""
  fi
  if [ "$server" = kafka ]; then create_topics; fi
}

stop_one() {
  local server="$1" pidfile pid timeout deadline t0=$SECONDS p
  pidfile="$(pidfile_of "$server")"
  if ! pid="$(our_pid "$server")"; then
    if [ -f "$pidfile" ]; then
      rm -f "$pidfile"
      say "$server: not running (removed stale pid file)"
    else
      say "$server: not running"
    fi
    p="$(main_port "$server")"
    if port_open "$p"; then
      say "$server: note: port $p is in use by $(port_owner "$p"), not started by this checkout; left alone"
    fi
    return 0
  fi
  timeout="$(stop_timeout "$server")"
  deadline=$((SECONDS + timeout))
  kill -TERM "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "$server (pid $pid) still running ${timeout}s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      local kdl=$((SECONDS + 10))
      while pid_alive "$pid" && [ "$SECONDS" -lt "$kdl" ]; do sleep 0.2; done
      pid_alive "$pid" && fail "$server (pid $pid) survived SIGKILL"
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  say "$server: stopped (pid $pid, $((SECONDS - t0))s)"
}

# prints the status line; returns 1 when the server is not up
status_one() {
  local server="$1" pid p ports
  ports="$(ports_of "$server" | tr ' ' ',')"
  if pid="$(our_pid "$server")"; then
    if "ready_$server"; then
      printf '%-10s running    pid %-8s ports %s\n' "$server" "$pid" "$ports"
      return 0
    fi
    printf '%-10s NOT READY  pid %-8s ports %s (process alive but not answering; see %s)\n' "$server" "$pid" "$ports" "$(log_of "$server")"
    return 1
  fi
  p="$(main_port "$server")"
  if port_open "$p"; then
    printf '%-10s stopped    %-12s ports %s (port %s is used by %s, not this checkout)\n' "$server" "" "$ports" "$p" "$(port_owner "$p")"
  else
    printf '%-10s stopped    %-12s ports %s\n' "$server" "" "$ports"
  fi
  return 1
}

cmd_status() {
  local s rc=0
  for s in "$@"; do status_one "$s" || rc=1; done
  return "$rc"
}

# ---------------------------------------------------------------------------------------------

main() {
  [ "$#" -ge 1 ] || {
    usage >&2
    exit 2
  }
  local cmd="$1" s servers=()
  shift
  for s in "$@"; do
    server_known "$s" || fail "unknown server '$s' (known: ${ALL_SERVERS[*]})"
    servers+=("$s")
  done
  [ "${#servers[@]}" -gt 0 ] || servers=("${ALL_SERVERS[@]}")
  case "$MONGO_IMPL" in ferretdb | mongod) ;; *) fail "PLANTWIRE_MONGO must be ferretdb or mongod, got '$MONGO_IMPL'" ;; esac
  mkdir -p "$DATA"
  DATA="$(cd "$DATA" && pwd)"

  case "$cmd" in
    install) cmd_install "${servers[@]}" ;;
    start)
      local t0=$SECONDS
      for_each start_one "${servers[@]}"
      say "started: ${servers[*]} ($((SECONDS - t0))s)"
      ;;
    stop)
      # reverse order: Kafka and the database before the brokers the services use
      local rev=() i
      for ((i = ${#servers[@]} - 1; i >= 0; i--)); do rev+=("${servers[i]}"); done
      for_each stop_one "${rev[@]}"
      ;;
    status) cmd_status "${servers[@]}" ;;
    browser) install_browser ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
