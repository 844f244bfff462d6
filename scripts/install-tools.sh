#!/usr/bin/env bash
# Installs the real Kafka clients and tools that oxka's integration tests and benchmark drive.
#
# Everything goes into $OXKA_CACHE (default ~/.cache/oxka), never into the checkout, so a fresh
# clone reuses it. Idempotent: a second run only checks that what it installed is still there.
#
#   $OXKA_CACHE/kafka-<ver>/classpath.txt   Apache Kafka jars (Maven Central), one classpath per version
#                                            (4.x also Kafka Streams and rocksdbjni, for tests/streams.rs)
#   $OXKA_CACHE/kafka-<ver>/log4j*.properties  quiet logging for the tools (WARN to stderr)
#   $OXKA_CACHE/venv                         kafka-python, confluent-kafka and the compression codecs
#   kcat, iptables, openssl, iperf3, tcpdump Debian packages (apt-get); iptables for tests/faultcheck,
#                                            openssl for the TLS tests' certificates, iperf3 for bench/consume.sh,
#                                            tcpdump for tests/tls.rs's capture of replication traffic
#
# Needs: Java 17, Maven, Python 3, and apt-get (as root) when kcat or iptables is missing.
# Override versions with OXKA_KAFKA_OLD (default 2.8.2) and OXKA_KAFKA_NEW (default 4.1.1).
set -euo pipefail

CACHE="${OXKA_CACHE:-$HOME/.cache/oxka}"
KAFKA_OLD="${OXKA_KAFKA_OLD:-2.8.2}"
KAFKA_NEW="${OXKA_KAFKA_NEW:-4.1.1}"
mkdir -p "$CACHE"

log() { printf '[install-tools] %s\n' "$*" >&2; }
die() { printf '[install-tools] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

for cmd in java mvn python3; do
  command -v "$cmd" >/dev/null || die "'$cmd' is not installed (need Java 17, Maven and Python 3)"
done

# ---------------------------------------------------------------------------------------------
# Apache Kafka from Maven Central
# ---------------------------------------------------------------------------------------------

# pom_for VERSION: prints a pom whose runtime classpath holds that Kafka version's broker, tools
# and a logging binding matching what the binary distribution ships.
pom_for() {
  local ver="$1" logging streams
  case "$ver" in
    2.*|3.*)
      # Kafka before 4.0: kafka-tools already brings slf4j-log4j12 + log4j 1.2 (as the distribution).
      logging=''
      streams=''
      ;;
    *)
      # Kafka Streams (with rocksdbjni) for tests/streams.rs: an exactly_once_v2 application.
      streams="
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-streams</artifactId><version>$ver</version></dependency>"
      # Kafka 4.x logs through log4j2; its slf4j-api is 1.7, so the slf4j 1.x binding.
      logging='
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-1.2-api</artifactId><version>2.24.3</version></dependency>'
      ;;
  esac
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.oxka.tools</groupId>
  <artifactId>kafka-tools-$ver</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$ver</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$ver</version></dependency>$streams$logging
  </dependencies>
</project>
EOF
}

write_log_config() {
  local dir="$1"
  # log4j 1.x (Kafka 2.8): everything at WARN on stderr, so tools print only their own output.
  cat >"$dir/log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  # log4j2 (Kafka 4.x).
  cat >"$dir/log4j2.properties" <<'EOF'
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

install_kafka() {
  local ver="$1" dir="$CACHE/kafka-$1" t0
  t0=$(now)
  mkdir -p "$dir"
  pom_for "$ver" >"$dir/pom.xml.new"
  write_log_config "$dir"
  if [[ -s "$dir/classpath.txt" ]] && cmp -s "$dir/pom.xml.new" "$dir/pom.xml" && classpath_complete "$dir/classpath.txt"; then
    rm -f "$dir/pom.xml.new"
    log "kafka $ver: cached ($(elapsed "$t0"))"
    return
  fi
  mv "$dir/pom.xml.new" "$dir/pom.xml"
  log "kafka $ver: resolving from Maven Central..."
  # -U not needed: a version is immutable. Retry once: Maven Central sometimes drops a download.
  local attempt
  for attempt in 1 2; do
    if mvn -q -B -f "$dir/pom.xml" dependency:build-classpath -Dmdep.outputFile="$dir/classpath.txt.tmp" \
        -Dmdep.includeScope=runtime >"$dir/mvn.log" 2>&1; then
      break
    fi
    [[ $attempt == 2 ]] && { tail -30 "$dir/mvn.log" >&2; die "maven could not resolve Kafka $ver (log: $dir/mvn.log)"; }
    log "kafka $ver: maven failed, retrying"
  done
  mv "$dir/classpath.txt.tmp" "$dir/classpath.txt"
  classpath_complete "$dir/classpath.txt" || die "kafka $ver: classpath lists missing jars"
  log "kafka $ver: resolved ($(elapsed "$t0"))"
}

classpath_complete() {
  local f
  IFS=: read -r -a jars <"$1"
  [[ ${#jars[@]} -gt 5 ]] || return 1
  for f in "${jars[@]}"; do [[ -f "$f" ]] || return 1; done
}

# ---------------------------------------------------------------------------------------------
# kcat, iptables, openssl, iperf3 and tcpdump (Debian; iptables is for the fault checker's network
# partitions, openssl makes the TLS tests' certificates, iperf3 is the consume bench's loopback baseline,
# tcpdump captures replication traffic in tests/tls.rs)
# ---------------------------------------------------------------------------------------------
# install_deb COMMAND PACKAGE: apt-get installs PACKAGE unless COMMAND is on the PATH (or in /usr/sbin).
install_deb() {
  local cmd="$1" pkg="$2" t0
  t0=$(now)
  if command -v "$cmd" >/dev/null || [[ -x "/usr/sbin/$cmd" ]]; then
    log "$cmd: present ($(elapsed "$t0"))"
    return
  fi
  command -v apt-get >/dev/null || die "$cmd is missing and apt-get is not available: install $pkg by hand"
  local sudo=""
  [[ $(id -u) == 0 ]] || sudo="sudo"
  log "$cmd: installing $pkg with apt-get..."
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >"$CACHE/apt.log" 2>&1; then
    $sudo apt-get update -q >>"$CACHE/apt.log" 2>&1 || true
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >>"$CACHE/apt.log" 2>&1 \
      || { tail -20 "$CACHE/apt.log" >&2; die "apt-get install $pkg failed"; }
  fi
  log "$cmd: installed ($(elapsed "$t0"))"
}

# ---------------------------------------------------------------------------------------------
# Python clients (PyPI)
# ---------------------------------------------------------------------------------------------
# Pinned: a client upgrade is a change to review, not something CI picks up by itself.
PY_PACKAGES=(kafka-python==3.0.12 confluent-kafka==2.16.1 lz4==4.4.5 cramjam==2.14.0 python-snappy==0.7.3 zstandard==0.25.0)

install_venv() {
  local venv="$CACHE/venv" t0 stamp
  t0=$(now)
  stamp="${PY_PACKAGES[*]}"
  if [[ -x "$venv/bin/python" ]] && [[ "$(cat "$venv/.oxka-packages" 2>/dev/null)" == "$stamp" ]] \
      && "$venv/bin/python" -c 'import kafka, confluent_kafka, lz4.frame, snappy, cramjam, zstandard' 2>/dev/null; then
    log "python venv: cached ($(elapsed "$t0"))"
    return
  fi
  log "python venv: installing ${PY_PACKAGES[*]}..."
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  "$venv/bin/python" -m pip install -q --upgrade "${PY_PACKAGES[@]}" >"$CACHE/pip.log" 2>&1 \
    || { tail -20 "$CACHE/pip.log" >&2; die "pip install failed (log: $CACHE/pip.log)"; }
  "$venv/bin/python" -c 'import kafka, confluent_kafka, lz4.frame, snappy, cramjam, zstandard' \
    || die "python packages installed but do not import"
  echo "$stamp" >"$venv/.oxka-packages"
  log "python venv: installed ($(elapsed "$t0"))"
}

T_START=$(now)
install_kafka "$KAFKA_OLD"
install_kafka "$KAFKA_NEW"
install_deb kcat kcat
install_deb iptables iptables
install_deb openssl openssl
install_deb iperf3 iperf3 # bench/consume.sh measures loopback TCP bandwidth with it
install_deb tcpdump tcpdump # tests/tls.rs captures the inter-broker traffic to show it is encrypted
install_venv

# Stable names the wrapper and the tests use: kafka-2.8 and kafka-4 point at the chosen versions.
ln -sfn "kafka-$KAFKA_OLD" "$CACHE/kafka-2.8"
ln -sfn "kafka-$KAFKA_NEW" "$CACHE/kafka-4"

# One line per tool with its version.
kafka_jar_version() {
  tr ':' '\n' <"$CACHE/kafka-$1/classpath.txt" | grep -m1 -E '/kafka-clients-[0-9]' | sed -E 's#.*/kafka-clients-(.*)\.jar#\1#'
}
echo "kafka-$KAFKA_OLD  (java tools, kafka-clients $(kafka_jar_version "$KAFKA_OLD"))  $CACHE/kafka-$KAFKA_OLD/classpath.txt"
echo "kafka-$KAFKA_NEW  (java tools + KRaft broker, kafka-clients $(kafka_jar_version "$KAFKA_NEW"))  $CACHE/kafka-$KAFKA_NEW/classpath.txt"
echo "kcat             $(kcat -V 2>&1 | sed -nE 's/^Version ([^ ]+) .*(librdkafka [^ ]+).*/\1 (\2)/p')"
"$CACHE/venv/bin/python" - <<'EOF'
import importlib.metadata as md
import confluent_kafka
for name in ("kafka-python", "confluent-kafka", "lz4", "cramjam", "python-snappy", "zstandard"):
    extra = f" (librdkafka {confluent_kafka.libversion()[0]})" if name == "confluent-kafka" else ""
    print(f"{name:<16} {md.version(name)}{extra}")
EOF
echo "java             $(java -version 2>&1 | head -1)"
log "done in $(elapsed "$T_START")"
