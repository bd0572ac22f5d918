#!/usr/bin/env bash
# A real Apache Kafka broker for tests and benchmarks: single node, KRaft (combined broker and
# controller), loopback only, ephemeral ports. No Docker: the server's jars come from Maven Central
# through Maven (tests/kafka/pom.xml) and are cached under ~/.cache/painpoint/kafka/<version>.
# Beside them, once a broker of the version has stopped cleanly: classes.jsa, a class data sharing
# archive that makes later JVMs start sooner.
#
#   scripts/kafka.sh fetch [--version V]             resolve the jars only (idempotent)
#   scripts/kafka.sh start DIR [--version V] [--sasl-ssl] [--owner-pid PID]
#   scripts/kafka.sh stop DIR                        SIGTERM, then SIGKILL after 30 s
#   scripts/kafka.sh run-class DIR CLASS [ARGS...]   run one of Kafka's tools (ConsumerGroupCommand)
#
# --owner-pid: the broker is stopped once process PID has exited (tests pass their own pid).
# start formats KRaft storage in DIR/data, starts the broker in the background, waits until it
# answers a metadata request and prints the bootstrap address on stdout as one line, host:port.
# Without --sasl-ssl that is the PLAINTEXT listener. With --sasl-ssl it is the SASL_SSL listener
# (SCRAM-SHA-512, TLS with a CA made by openssl for this broker) and DIR also gets:
#   DIR/ca.crt                    the CA that signed the broker's certificate (PEM)
#   DIR/scram-user                the SCRAM-SHA-512 user name, created at format time
#   DIR/scram-password            its password (random, mode 600)
#   DIR/client-sasl-ssl.properties  librdkafka properties for that listener (bootstrap.servers,
#                                 security.protocol, sasl.*, ssl.ca.location), usable with kcat -F
# start on a DIR whose broker was stopped or killed restarts it with its data, ports and credentials
# (--version and --sasl-ssl are then taken from the first start).
# The PLAINTEXT listener stays open beside it (DIR/bootstrap-plaintext) for setup and checks.
# Other files: DIR/bootstrap (what start printed), DIR/kafka.pid, DIR/version,
# DIR/server.properties, DIR/broker.log (the broker's own log), DIR/classpath.
#
# Versions: default 4.4.0 (newest 4.x); 3.9.2 is the newest 3.9.x. Environment:
# PAINPOINT_KAFKA_VERSION overrides the default, PAINPOINT_KAFKA_HEAP (default 512m) the broker's
# maximum heap, PAINPOINT_KAFKA_REBALANCE_DELAY_MS (default 0, so that tests do not wait) the
# broker's group.initial.rebalance.delay.ms (Apache Kafka's own default is 3000).
set -euo pipefail

default_version=${PAINPOINT_KAFKA_VERSION:-4.4.0}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${PAINPOINT_CACHE:-$HOME/.cache/painpoint}/kafka
scram_user=painpoint

die() { echo "kafka.sh: $*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# Resolves kafka_2.13 and kafka-tools with their runtime dependencies into the cache, once.
fetch() {
  local version=$1 libs=$cache/$1/libs
  if [[ -f $cache/$version/complete ]]; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found (scripts/install-deps.sh installs maven)"
  rm -rf "$libs"
  echo "kafka.sh: resolving Apache Kafka $version from Maven Central into $libs" >&2
  local profile=()
  [[ $version == 3.* ]] || profile=(-Plog4j2)
  # --strict-checksums: a jar whose checksum does not match the repository's fails the fetch.
  mvn -B -q --strict-checksums -Dstyle.color=never -f "$root/tests/kafka/pom.xml" \
    -Dmaven.repo.local="$cache/m2" "${profile[@]}" \
    -Dkafka.version="$version" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2 ||
    die "Maven could not resolve Apache Kafka $version"
  [[ -f $libs/kafka_2.13-$version.jar ]] || die "kafka_2.13-$version.jar missing after resolution"
  # What was used, for comparing caches.
  (cd "$libs" && sha256sum ./*.jar) > "$cache/$version/sha256sums"
  touch "$cache/$version/complete"
}

free_ports() {
  /usr/bin/python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# JVM options; $1 is the log configuration's prefix in tests/kafka ("" broker, "tools-" tools),
# $2 the DIR of the broker the JVM is for, $3 "broker" when it runs the broker itself.
java_options() {
  echo -Xmx"${PAINPOINT_KAFKA_HEAP:-512m}" -Xms64m -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$root/tests/kafka/${1:-}log4j2.properties" \
    -Dlog4j.configuration="file:$root/tests/kafka/${1:-}log4j.properties" \
    "$(class_archive_option "$2" "${3:-}")"
}

# Class data sharing: the classes a broker loaded, archived when a broker of that version first
# stops cleanly, let every later JVM of the version (brokers, the storage tool, Kafka's tools)
# start with less work. The JVM ignores an archive that does not match its classpath or itself.
class_archive_option() {
  local dir=$1 role=$2 archive
  archive=$(class_archive "$dir")
  if [[ -f $archive ]]; then
    echo "-XX:SharedArchiveFile=$archive"
  elif [[ $role == broker ]]; then
    echo "-XX:ArchiveClassesAtExit=$dir/classes.jsa"
  fi
}

# The kept archive for the version of the broker in DIR.
class_archive() {
  echo "$cache/$(cat "$1/version")/classes.jsa"
}

# After the broker of DIR stopped on SIGTERM: keeps the archive its JVM wrote, if none is kept.
keep_class_archive() {
  local dir=$1 archive
  [[ -f $dir/classes.jsa ]] || return 0
  archive=$(class_archive "$dir")
  if [[ ! -f $archive ]]; then
    cp "$dir/classes.jsa" "$archive.$$" && mv "$archive.$$" "$archive"
  fi
  rm -f "$dir/classes.jsa"
}

java_run() {
  local dir=$1 options; shift
  read -r -a options <<<"$(java_options "${JAVA_LOG:-}" "$dir")"
  java "${options[@]}" -cp "$(cat "$dir/classpath")" "$@"
}

# A CA, and a broker certificate for 127.0.0.1/localhost in a PKCS12 keystore.
make_tls() {
  local dir=$1 pass=$2
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=painpoint-test-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/broker.key" -out "$dir/broker.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/broker.ext"
  openssl x509 -req -in "$dir/broker.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/broker.ext" -out "$dir/broker.crt" 2>/dev/null
  openssl pkcs12 -export -in "$dir/broker.crt" -inkey "$dir/broker.key" -name broker \
    -out "$dir/broker.p12" -passout "pass:$pass"
  rm -f "$dir/broker.csr" "$dir/broker.ext"
}

write_server_properties() {
  local dir=$1 port=$2 controller_port=$3 sasl_port=$4 store_pass=$5
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  if [[ -n $sasl_port ]]; then
    listeners+=",SASL_SSL://127.0.0.1:$sasl_port"
    advertised+=",SASL_SSL://127.0.0.1:$sasl_port"
  fi
  cat > "$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
controller.listener.names=CONTROLLER
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=${PAINPOINT_KAFKA_REBALANCE_DELAY_MS:-0}
num.network.threads=2
num.io.threads=2
background.threads=2
log.cleaner.threads=1
log.cleaner.backoff.ms=1000
log.retention.check.interval.ms=1000
EOF
  if [[ -n $sasl_port ]]; then
    cat >> "$dir/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/broker.p12
ssl.keystore.password=$store_pass
ssl.key.password=$store_pass
EOF
  fi
}

# Succeeds once the broker answers a metadata request on the given librdkafka configuration.
broker_answers() {
  timeout 10 kcat "$@" -L -m 5 >/dev/null 2>&1
}

start() {
  local dir=$1; shift
  local version=$default_version sasl_ssl=0 owner_pid=""
  while (($#)); do
    case $1 in
      --version) version=${2:?--version needs a value}; shift 2 ;;
      --sasl-ssl) sasl_ssl=1; shift ;;
      --owner-pid) owner_pid=${2:?--owner-pid needs a value}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/kafka.pid ]] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
    die "a broker already runs from $dir (pid $(cat "$dir/kafka.pid"))"
  fi
  command -v java >/dev/null || die "java not found (scripts/install-deps.sh installs a JRE)"
  command -v kcat >/dev/null || die "kcat not found"
  if [[ -f $dir/data/meta.properties ]]; then
    launch "$dir"
    [[ -z $owner_pid ]] || watch_owner "$dir" "$owner_pid"
    return
  fi
  fetch "$version"
  echo "$cache/$version/libs/*" > "$dir/classpath"
  echo "$version" > "$dir/version"

  local ports port controller_port sasl_port="" store_pass=""
  read -r -a ports <<<"$(free_ports 3)"
  port=${ports[0]} controller_port=${ports[1]}
  local format_args=()
  if ((sasl_ssl)); then
    sasl_port=${ports[2]}
    store_pass=$(openssl rand -hex 16)
    make_tls "$dir" "$store_pass"
    echo "$scram_user" > "$dir/scram-user"
    (umask 077 && openssl rand -hex 16 > "$dir/scram-password")
    local credential="name=\"$scram_user\",password=\"$(cat "$dir/scram-password")\""
    format_args=(--add-scram "SCRAM-SHA-512=[$credential]")
  fi
  write_server_properties "$dir" "$port" "$controller_port" "$sasl_port" "$store_pass"
  echo "127.0.0.1:$port" > "$dir/bootstrap-plaintext"

  local cluster_id
  # 16 random bytes, base64url without padding: the form Kafka's cluster ids take. Not starting
  # with '-', which the storage tool's option parser would take for an option (as Kafka's own
  # Uuid.randomUuid() avoids).
  cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id=$(openssl rand 16 | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  [[ ${#cluster_id} == 22 ]] || die "could not make a cluster id"
  rm -rf "$dir/data"
  java_run "$dir" kafka.tools.StorageTool format --config "$dir/server.properties" \
    --cluster-id "$cluster_id" --ignore-formatted "${format_args[@]}" > "$dir/format.log" 2>&1 ||
    die "storage format failed: $(tail -5 "$dir/format.log")"

  if ((sasl_ssl)); then
    cat > "$dir/client-sasl-ssl.properties" <<EOF
bootstrap.servers=127.0.0.1:$sasl_port
security.protocol=SASL_SSL
sasl.mechanisms=SCRAM-SHA-512
sasl.username=$scram_user
sasl.password=$(cat "$dir/scram-password")
ssl.ca.location=$dir/ca.crt
EOF
    chmod 600 "$dir/client-sasl-ssl.properties"
    echo "127.0.0.1:$sasl_port" > "$dir/bootstrap"
  else
    echo "127.0.0.1:$port" > "$dir/bootstrap"
  fi
  launch "$dir"
  [[ -z $owner_pid ]] || watch_owner "$dir" "$owner_pid"
}

# A detached watcher that stops the broker of DIR once process OWNER has exited: a test killed
# before its cleanup (ctest's timeout, SIGKILL) must not leave a JVM behind.
watch_owner() {
  local dir=$1 owner=$2
  setsid "$0" watch "$dir" "$owner" < /dev/null > /dev/null 2>&1 &
}

watch() {
  local dir=$1 owner=$2
  while kill -0 "$owner" 2>/dev/null && [[ -d $dir ]]; do sleep 1; done
  [[ -f $dir/kafka.pid ]] && stop "$dir"
  return 0
}

# Starts the broker formatted in DIR and waits until it answers.
launch() {
  local dir=$1 port
  port=$(cut -d: -f2 "$dir/bootstrap-plaintext")
  # set -m: the broker gets its own process group, so signals meant for the caller's group (ctest's
  # timeout, a test killing serve) do not reach it.
  set -m
  local options
  read -r -a options <<<"$(java_options "" "$dir" broker)"
  java "${options[@]}" -cp "$(cat "$dir/classpath")" kafka.Kafka "$dir/server.properties" \
    >> "$dir/broker.log" 2>&1 < /dev/null &
  echo $! > "$dir/kafka.pid"
  set +m

  local deadline=$((SECONDS + 90))
  # Readiness is asked on the PLAINTEXT listener: whether a given client can log in on SASL_SSL is
  # for the tests to find out (docs/adr-004-real-kafka.md).
  until broker_answers -b "127.0.0.1:$port"; do
    kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null ||
      die "broker exited during start-up: $(grep -m3 -E 'ERROR|Exception' "$dir/broker.log")"
    ((SECONDS < deadline)) || { stop "$dir"; die "broker did not answer within 90 s"; }
    sleep 0.5
  done
  cat "$dir/bootstrap"
}

stop() {
  local dir=$1 pid
  [[ -f $dir/kafka.pid ]] || return 0
  pid=$(cat "$dir/kafka.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null || true  # a broker stopped by a stall test cannot shut down
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "kafka.sh: broker $pid did not stop within 30 s; killing it" >&2
      kill -KILL "$pid"
      rm -f "$dir/classes.jsa"  # possibly cut short
    fi
  fi
  rm -f "$dir/kafka.pid"
  keep_class_archive "$dir"
}

cmd=${1:-}
case $cmd in
  fetch)
    shift; version=$default_version
    [[ ${1:-} == --version ]] && version=${2:?--version needs a value}
    fetch "$version" ;;
  start) [[ $# -ge 2 ]] || usage; shift; start "$@" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
  watch) [[ $# -eq 3 ]] || usage; watch "$2" "$3" ;;
  run-class)
    [[ $# -ge 3 ]] || usage
    dir=$2; shift 2
    PAINPOINT_KAFKA_HEAP=256m JAVA_LOG=tools- java_run "$dir" "$@" ;;
  *) usage ;;
esac
