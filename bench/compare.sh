#!/usr/bin/env bash
# AsgardBackup against restic and Borg, in one go on the same data (issue 5's comparison).
#
#   bench/compare.sh [--quick | --smoke] [--cold] [--dir DIR] [--keep] [--tools LIST]
#
#   --quick   small datasets (about 150 MB mixed, 10,000 small files, 3 releases): a fast check that
#             the script and all tools work; the figures mean little.
#   --smoke   tiny datasets (about 20 MB mixed, 1,000 small files, no releases, nothing downloaded):
#             checks in a minute that every tool's restore passes the comparison below.
#   --cold    drop the page cache (needs root) before each first backup and each restore. Without
#             it, each data set is read through once before each tool's first backup of it (warm).
#   --dir     work folder (default: $ASGARD_BENCH_DIR or /var/tmp/asgard-bench). Datasets are built
#             there once and reused; repositories, server data and restores are made anew each run.
#   --keep    keep the repositories and server data of this run (default: removed at the end).
#   --tools   which of asgard,restic,borg to run (default: all three); e.g. --tools asgard to
#             measure a new AsgardBackup build alone (the other columns then show "–").
#
# Runs as root on Debian (installs restic, borgbackup, time, zstd, b3sum, python3-pip, rsync, acl when
# missing); as root every tool restores owners, which the comparison then checks.
# Datasets: "mixed" = a copy of real files from /usr (files and symlinks, sorted order, up to a byte
# budget) plus a folder of metadata cases (empty and nested empty folders, modes 700/750/2775/1777/
# 4755/444, a hard-link pair, symlinks to a file, a folder and nowhere, a user xattr, an ACL, old and
# nanosecond times, other owners when run as root), "small" = 100,000 files of 1-16 KiB cut from real
# text found on the machine, "releases" = 8 consecutive Django source releases from PyPI (`pip
# download --no-binary :all:`), each extracted into the same folder in turn. Every restore is compared
# with its source twice: `diff -r --no-dereference` (contents, links, names) and `rsync -aHAX
# --numeric-ids -n -i --delete SRC/ RESTORED/` (modes, times, owners, hard links, ACLs, xattrs, empty
# folders), which must print nothing; any difference fails the script. Prints one markdown table at
# the end.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="${ASGARD_BENCH_DIR:-/var/tmp/asgard-bench}"
QUICK=0
COLD=0
TOOLS=asgard,restic,borg
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --smoke) QUICK=2 ;;
    --cold) COLD=1 ;;
    --keep) KEEP=1 ;;
    --tools) TOOLS="$2"; shift ;;
    --dir) BENCH="$2"; shift ;;
    -h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

want() { [[ ",$TOOLS," == *",$1,"* ]]; }
die() { echo "compare.sh: ERROR: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

# Pinned inputs. Django's patch releases 5.0 .. 5.0.7: consecutive versions of a sizeable source tree.
RELEASES=(5.0 5.0.1 5.0.2 5.0.3 5.0.4 5.0.5 5.0.6 5.0.7)
if [ "$QUICK" = 2 ]; then
  MIXED_BYTES=$((20 * 1000 * 1000))
  SMALL_FILES=1000
  RELEASES=()
  SET=smoke
elif [ "$QUICK" = 1 ]; then
  MIXED_BYTES=$((150 * 1000 * 1000))
  SMALL_FILES=10000
  RELEASES=("${RELEASES[@]:0:3}")
  SET=quick
else
  MIXED_BYTES=$((1300 * 1000 * 1000))
  SMALL_FILES=100000
  SET=full
fi
MIXED_MAX_FILE=$((32 << 20)) # larger files are skipped: the mixed set is many ordinary files
AGENTS=4

if [ "$COLD" = 1 ] && [ "$(id -u)" != 0 ]; then
  die "--cold drops the page cache and needs root"
fi

# ---------------------------------------------------------------------------------------------------
say "tools"
need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
[ -x /usr/bin/time ] || need+=(time)
command -v zstd >/dev/null || need+=(zstd)
command -v b3sum >/dev/null || need+=(b3sum)
command -v python3 >/dev/null || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || command -v pip3 >/dev/null || need+=(python3-pip)
command -v diff >/dev/null || need+=(diffutils)
command -v tar >/dev/null || need+=(tar)
command -v rsync >/dev/null || need+=(rsync)
command -v setfacl >/dev/null || need+=(acl)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${need[*]}; run as root (apt-get) or install them first"
  say "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if python3 -m pip --version >/dev/null 2>&1; then PIP=(python3 -m pip); else PIP=(pip3); fi

say "build (release)"
(cd "$ROOT" && cargo build --release -q -p asgard-server -p asgard-agent) || die "cargo build failed"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER_BIN="$TARGET/release/asgard-server"
AGENT_BIN="$TARGET/release/asgard-agent"
[ -x "$SERVER_BIN" ] && [ -x "$AGENT_BIN" ] || die "release binaries missing in $TARGET/release"

DATA="$BENCH/data-$SET"
RELDL="$BENCH/releases" # the downloaded release tarballs (shared by both data sets)
RUN="$BENCH/run"
LOG="$BENCH/logs"
mkdir -p "$DATA" "$LOG"
rm -rf "${RUN:?}" "${LOG:?}"/*
mkdir -p "$RUN"

SERVER_PIDS=()
cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 0 ]; then rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
# Datasets (built once, reused while their stamp file is present).

build_mixed() {
  local dst="$DATA/mixed" list="$DATA/mixed.list"
  [ -f "$DATA/mixed.done" ] && return
  say "dataset mixed: real files from /usr up to $((MIXED_BYTES / 1000000)) MB"
  rm -rf "$dst" "$list".*
  # Files and symlinks of /usr/share, /usr/bin, /usr/lib in sorted order, until the byte budget;
  # split by bytes into four parts (p0..p3), which the four concurrent agents back up.
  local r
  for r in /usr/share /usr/bin /usr/lib; do
    [ -d "$r" ] && find "$r" \( -type f -o -type l \) -printf '%s\t%y\t%p\n' | LC_ALL=C sort -t$'\t' -k3
  done | awk -F'\t' -v budget="$MIXED_BYTES" -v maxf="$MIXED_MAX_FILE" -v out="$list" '
      done || ($2 == "f" && $1 > maxf) { next }
      { sub(/^\//, "", $3); sum += ($2 == "f" ? $1 : 0); part = int(4 * sum / (budget + 1)); if (part > 3) part = 3;
        print $3 > (out "." part); if (sum >= budget) done = 1 }'
  local p
  for p in 0 1 2 3; do
    mkdir -p "$dst/p$p"
    tar -C / -cf - --no-recursion --verbatim-files-from -T "$list.$p" | tar -xf - -C "$dst/p$p"
  done
  touch "$DATA/mixed.done"
}

# The metadata a restore must give back, in a folder of the mixed set (p0/meta): the things real
# trees from /usr lack. Owners other than root only when run as root (nobody else can chown).
build_meta_cases() {
  local m="$DATA/mixed/p0/meta"
  [ -f "$DATA/mixed.meta.done" ] && return
  say "dataset mixed: metadata cases in p0/meta"
  rm -rf "$m"
  mkdir -p "$m"/{empty,nested-empty/a/b/c,private,shared,sticky/inner-empty,owned,acl-dir}
  cd "$m"
  printf 'nur für mich\n' >private/key
  chmod 600 private/key
  chmod 700 private
  printf 'team\n' >shared/notes
  chmod 664 shared/notes
  chmod 2775 shared
  chmod 1777 sticky
  chmod 750 nested-empty/a/b
  printf '#!/bin/sh\necho setuid\n' >setuid-tool
  chmod 4755 setuid-tool
  printf 'read only\n' >readonly
  chmod 444 readonly
  printf 'one inode, two names\n' >hard-a
  ln hard-a hard-b
  ln -s private/key link-to-file
  ln -s nested-empty/a link-to-folder
  ln -s /nonexistent/target link-to-nowhere
  printf 'with an xattr\n' >xattr-file
  python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.asgard.bench", b"value 1"); os.setxattr(sys.argv[2], "user.asgard.folder", b"value 2")' \
    xattr-file shared || die "no user xattrs on the file system of $BENCH (use --dir elsewhere)"
  printf 'with an ACL\n' >acl-file
  setfacl -m u:1234:rw,g:2345:r acl-file || die "no POSIX ACLs on the file system of $BENCH"
  setfacl -d -m u:1234:rwx acl-dir
  printf 'owned by others\n' >owned/file
  ln -s file owned/link
  if [ "$(id -u)" = 0 ]; then
    chown 1234:2345 owned owned/file
    chown -h 1235:2346 owned/link
    chmod 750 owned
  fi
  touch -m -d @1234567890.123456789 hard-a
  touch -m -d '2001-02-03 04:05:06' readonly setuid-tool
  touch -h -m -d '2002-03-04 05:06:07' link-to-file owned/link
  # Folders last, deepest first: creating anything inside a folder sets its mtime.
  find . -depth -type d -exec touch -m -d '2003-04-05 06:07:08' {} +
  cd - >/dev/null
  touch "$DATA/mixed.meta.done"
}

build_small() {
  local dst="$DATA/small"
  [ -f "$DATA/small.done" ] && return
  say "dataset small: $SMALL_FILES files of 1-16 KiB cut from real text"
  rm -rf "$dst"
  python3 - "$dst" "$SMALL_FILES" <<'EOF'
import os, sys
dst, count = sys.argv[1], int(sys.argv[2])
# Real text on the machine: headers, Python and Perl sources, uncompressed docs (sorted: deterministic).
suffixes = ('.h', '.hpp', '.py', '.pm', '.pl', '.txt', '.md', '.rst', '.html', '.c', '.css', '.js')
roots = ['/usr/include', '/usr/share/perl', '/usr/share/perl5', '/usr/lib/python3', '/usr/share/doc',
         '/usr/lib/python3.11', '/usr/lib/python3.12', '/usr/lib/python3.13', '/usr/share/javascript']
files = []
for r in roots:
    for dp, dn, fn in os.walk(r):
        dn.sort()
        for f in sorted(fn):
            p = os.path.join(dp, f)
            if f.endswith(suffixes) and os.path.isfile(p) and not os.path.islink(p):
                files.append(p)
corpus = bytearray()
for p in files:
    try:
        with open(p, 'rb') as fh:
            corpus += fh.read()
    except OSError:
        pass
    if len(corpus) >= 256 << 20:
        break
if len(corpus) < 1 << 20:
    sys.exit('too little text found under /usr for the small-files dataset')
x = 0x9E3779B97F4A7C15
pos = 0
for i in range(count):
    x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 7
    x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
    size = 1024 + x % (15 * 1024 + 1)
    if pos + size > len(corpus):
        pos = (x >> 20) % 4096  # next pass over the text, at another alignment
    d = os.path.join(dst, '%03d' % (i // 1000), '%d' % (i // 100 % 10))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'f%06d.txt' % i), 'wb') as fh:
        fh.write(corpus[pos:pos + size])
    pos += size
EOF
  touch "$DATA/small.done"
}

fetch_releases() {
  local v
  mkdir -p "$RELDL"
  for v in "${RELEASES[@]}"; do
    [ -f "$RELDL/django-$v.tar.gz" ] && continue
    say "dataset releases: pip download django==$v"
    local tmp
    tmp="$(mktemp -d "$RELDL/dl.XXXXXX")"
    if ! "${PIP[@]}" download -q --no-binary :all: --no-deps -d "$tmp" "django==$v" >"$LOG/pip-$v.log" 2>&1 &&
      ! "${PIP[@]}" download -q --no-binary :all: --no-deps --no-build-isolation -d "$tmp" "django==$v" >>"$LOG/pip-$v.log" 2>&1; then
      tail -20 "$LOG/pip-$v.log" >&2
      die "pip download django==$v failed"
    fi
    mv "$tmp"/*.tar.gz "$RELDL/django-$v.tar.gz"
    rm -rf "$tmp"
  done
}

# Replaces the release folder's content by release $1 (the same path for every release).
extract_release() {
  local dir="$DATA/rel/django"
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -xzf "$RELDL/django-$1.tar.gz" -C "$dir" --strip-components=1
}

build_mixed
build_meta_cases
build_small
fetch_releases

# ---------------------------------------------------------------------------------------------------
# Measuring: /usr/bin/time -v around each command; results in R[tool.item].
# The restored trees stay until the end of the run: deleting 55,000 files just before the next
# tool's restore makes ext4's inode allocator skip the freshly freed inodes for a few minutes
# (seconds of system time in `recently_deleted`), which would charge one tool for the one before.

declare -A R
drop_caches() {
  if [ "$COLD" = 1 ]; then
    sync
    echo 3 >/proc/sys/vm/drop_caches
  fi
}

# before_first_backup DIR : the page cache state every tool's first backup of DIR starts from: cold
# (dropped) with --cold, otherwise warm (DIR read through once, so that the first tool to back it
# up does not pay for reading it from disk while the later ones get it from memory).
before_first_backup() {
  drop_caches
  if [ "$COLD" = 0 ]; then
    tar -cf - -C "$1" . | cat >/dev/null
  fi
}

# run_timed NAME CMD... : runs CMD under /usr/bin/time -v; sets R[NAME.s] and R[NAME.rss] (KiB).
run_timed() {
  local name="$1"
  shift
  if ! /usr/bin/time -v -o "$LOG/$name.time" "$@" >"$LOG/$name.out" 2>"$LOG/$name.err"; then
    echo "--- $name failed: $*" >&2
    tail -20 "$LOG/$name.err" >&2 || true
    tail -5 "$LOG/$name.out" >&2 || true
    die "$name failed (logs in $LOG)"
  fi
  local wall rss
  wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$LOG/$name.time")"
  rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$LOG/$name.time")"
  R[$name.s]="$(awk -v t="$wall" 'BEGIN { n = split(t, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.2f", s }')"
  R[$name.rss]="$rss"
  say "$name: ${R[$name.s]} s, peak RSS $((rss / 1024)) MiB"
}

# verify_restore NAME SRC RESTORED : the restored tree is the source, or the script fails: the same
# contents, symlinks and names (`diff -r`), and the same metadata (rsync, in dry run, itemizes every
# entry it would have to change: mode, mtime, owner and group by number, hard links, ACLs, xattrs,
# missing or extra entries such as empty folders; it must find nothing).
verify_restore() {
  local bad=0 n
  if ! diff -r --no-dereference "$2" "$3" >"$LOG/$1.diff" 2>&1; then
    head -20 "$LOG/$1.diff" >&2
    echo "--- $1: the restored tree differs from the source (full list in $LOG/$1.diff)" >&2
    bad=1
  fi
  if ! rsync -aHAX --numeric-ids -n -i --delete "$2/" "$3/" >"$LOG/$1.rsync" 2>&1; then
    head -20 "$LOG/$1.rsync" >&2
    die "$1: rsync could not compare the restored tree (see $LOG/$1.rsync)"
  fi
  if [ -s "$LOG/$1.rsync" ]; then
    n="$(wc -l <"$LOG/$1.rsync")"
    head -20 "$LOG/$1.rsync" >&2
    echo "--- $1: the restored tree's metadata differs from the source in $n entries (rsync -aHAX --numeric-ids -n -i --delete; full list in $LOG/$1.rsync)" >&2
    bad=1
  fi
  [ "$bad" = 0 ] || die "$1: the restore is not exact"
  say "$1: restored tree is identical (diff -r, rsync -aHAX)"
}

# The bytes of the regular files below the given paths (what a tool stores; folder sizes left out,
# which would count a chunk store's fan-out folders).
bytes_of() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }

# ---------------------------------------------------------------------------------------------------
# AsgardBackup: a release server on 127.0.0.1 (any free port) with its own data dir.

# start_server DIR : starts a server, sets SERVER_URL, SERVER_PID, SERVER_FP.
start_server() {
  local dir="$1"
  mkdir -p "$dir"
  cat >"$dir/server.yaml" <<EOF
data_dir: $dir/data
listen: 127.0.0.1:0
keep_versions: 16
registration: open
gc_interval: 365d
db_backup_interval: 0s
verify_interval: 0s
EOF
  "$SERVER_BIN" serve --config "$dir/server.yaml" >"$dir/server.out" 2>"$dir/server.err" &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  local i
  SERVER_URL=""
  for i in $(seq 1 600); do
    SERVER_URL="$(grep -o 'https://[^ ]*' "$dir/server.out" 2>/dev/null | head -1 || true)"
    [ -n "$SERVER_URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/server.err" >&2; die "the server did not start"; }
    sleep 0.1
  done
  [ -n "$SERVER_URL" ] || die "the server printed no URL within 60 s"
  SERVER_FP="$("$SERVER_BIN" fingerprint --config "$dir/server.yaml" | tr -d '[:space:]')"
  [ -n "$SERVER_FP" ] || die "no server fingerprint"
}

# peak RSS (KiB) of a running process
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || die "the server exited with an error after SIGTERM"
  local keep=() pid
  for pid in "${SERVER_PIDS[@]}"; do [ "$pid" = "$SERVER_PID" ] || keep+=("$pid"); done
  SERVER_PIDS=("${keep[@]+"${keep[@]}"}")
}

# new_agent NAME USER : config + state dir for one agent of the current server (pinned fingerprint).
new_agent() {
  local dir="$RUN/agent-$1"
  mkdir -p "$dir/state"
  cat >"$dir/agent.yaml" <<EOF
server:
  url: $SERVER_URL
  fingerprint: "$SERVER_FP"
device_name: bench-$2
language: en
EOF
  # The agent's command line for this user, as an executable (so that /usr/bin/time measures the
  # agent process itself).
  cat >"$dir/run" <<EOF
#!/bin/sh
exec env USER="$2" USERNAME="$2" LANG=C.UTF-8 "$AGENT_BIN" --config "$dir/agent.yaml" --state-dir "$dir/state" "\$@"
EOF
  chmod +x "$dir/run"
  "$dir/run" login >"$LOG/login-$1.out" 2>&1 || { cat "$LOG/login-$1.out" >&2; die "agent login ($1) failed"; }
}

# ---------------------------------------------------------------------------------------------------
say "machine limits on the mixed data"
drop_caches
run_timed limits.tar bash -c 'tar -cf - -C "$1" . | cat >/dev/null' _ "$DATA/mixed"
MIXED_BYTES_REAL="$(bytes_of "$DATA/mixed")"
MIXED_FILES="$(find "$DATA/mixed" -type f | wc -l)"
SMALL_BYTES_REAL="$(bytes_of "$DATA/small")"
SAMPLE="$RUN/sample.tar"
{ tar -cf - -C "$DATA/mixed" . || true; } | head -c $((512 << 20)) >"$SAMPLE"
SAMPLE_BYTES="$(stat -c %s "$SAMPLE")"
run_timed limits.b3_1 b3sum --num-threads 1 "$SAMPLE"
run_timed limits.b3_all b3sum "$SAMPLE"
run_timed limits.zstd_1 zstd -q -3 -T1 -c "$SAMPLE" -o /dev/null
run_timed limits.zstd_all zstd -q -3 -T0 -c "$SAMPLE" -o /dev/null
ZSTD_RATIO="$(zstd -q -3 -T0 -c "$SAMPLE" | wc -c)"
rm -f "$SAMPLE"

# ---------------------------------------------------------------------------------------------------
if want asgard; then
  say "AsgardBackup"
  start_server "$RUN/asgard"
  new_agent main bench
  before_first_backup "$DATA/mixed"
  run_timed asgard.first_mixed "$RUN/agent-main/run" backup --json "$DATA/mixed"
  run_timed asgard.re_mixed "$RUN/agent-main/run" backup --json "$DATA/mixed"
  drop_caches
  mkdir -p "$RUN/restore-asgard"
  run_timed asgard.restore_mixed "$RUN/agent-main/run" restore "$DATA/mixed" --to "$RUN/restore-asgard"
  verify_restore asgard.restore_mixed "$DATA/mixed" "$RUN/restore-asgard/mixed"
  before_first_backup "$DATA/small"
  run_timed asgard.first_small "$RUN/agent-main/run" backup --json "$DATA/small"
  run_timed asgard.re_small "$RUN/agent-main/run" backup --json "$DATA/small"
  R[asgard.server_main.rss]="$(hwm_kib "$SERVER_PID")"
  stop_server

  say "AsgardBackup: $AGENTS agents (users) back up at once"
  start_server "$RUN/asgard-multi"
  for i in $(seq 0 $((AGENTS - 1))); do new_agent "multi$i" "user$i"; done
  pids=()
  for i in $(seq 0 $((AGENTS - 1))); do
    part="$DATA/mixed/p$((i % 4))"
    /usr/bin/time -v -o "$LOG/asgard.multi$i.time" "$RUN/agent-multi$i/run" backup --json "$part" \
      >"$LOG/asgard.multi$i.out" 2>"$LOG/asgard.multi$i.err" &
    pids+=($!)
  done
  t0=$(date +%s.%N)
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { tail -20 "$LOG/asgard.multi$i.err" >&2; die "concurrent agent $i failed"; }
  done
  R[asgard.multi.s]="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')"
  R[asgard.server_multi.rss]="$(hwm_kib "$SERVER_PID")"
  say "asgard.multi: ${R[asgard.multi.s]} s, server peak RSS $((${R[asgard.server_multi.rss]} / 1024)) MiB"
  stop_server
  rm -rf "$RUN/asgard-multi"
fi

# ---------------------------------------------------------------------------------------------------
if want restic; then
  say "restic"
  export RESTIC_PASSWORD=asgard-bench RESTIC_CACHE_DIR="$RUN/restic-cache"
  RREPO="$RUN/restic"
  restic -r "$RREPO" init -q --repository-version 2 >"$LOG/restic-init.log" 2>&1 || { cat "$LOG/restic-init.log" >&2; die "restic init failed"; }
  before_first_backup "$DATA/mixed"
  run_timed restic.first_mixed restic -r "$RREPO" --compression auto backup -q "$DATA/mixed"
  run_timed restic.re_mixed restic -r "$RREPO" --compression auto backup -q "$DATA/mixed"
  drop_caches
  run_timed restic.restore_mixed restic -r "$RREPO" restore latest --path "$DATA/mixed" --target "$RUN/restore-restic"
  verify_restore restic.restore_mixed "$DATA/mixed" "$RUN/restore-restic$DATA/mixed"
  before_first_backup "$DATA/small"
  run_timed restic.first_small restic -r "$RREPO" --compression auto backup -q "$DATA/small"
  run_timed restic.re_small restic -r "$RREPO" --compression auto backup -q "$DATA/small"
  rm -rf "$RREPO" "$RESTIC_CACHE_DIR"
fi

# ---------------------------------------------------------------------------------------------------
if want borg; then
  say "Borg"
  export BORG_BASE_DIR="$RUN/borg-base" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
    BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_DISPLAY_PASSPHRASE=no
  BREPO="$RUN/borg"
  borg init -e none "$BREPO" >"$LOG/borg-init.log" 2>&1 || { cat "$LOG/borg-init.log" >&2; die "borg init failed"; }
  before_first_backup "$DATA/mixed"
  run_timed borg.first_mixed borg create --compression zstd,3 "$BREPO::mixed-1" "$DATA/mixed"
  run_timed borg.re_mixed borg create --compression zstd,3 "$BREPO::mixed-2" "$DATA/mixed"
  drop_caches
  mkdir -p "$RUN/restore-borg"
  run_timed borg.restore_mixed bash -c 'cd "$1" && borg extract "$2"' _ "$RUN/restore-borg" "$BREPO::mixed-2"
  verify_restore borg.restore_mixed "$DATA/mixed" "$RUN/restore-borg$DATA/mixed"
  before_first_backup "$DATA/small"
  run_timed borg.first_small borg create --compression zstd,3 "$BREPO::small-1" "$DATA/small"
  run_timed borg.re_small borg create --compression zstd,3 "$BREPO::small-2" "$DATA/small"
  rm -rf "$BREPO" "$BORG_BASE_DIR"
fi

# ---------------------------------------------------------------------------------------------------
say "releases: ${RELEASES[*]} backed up in turn by each tool"
RREL="$RUN/restic-rel"
BREL="$RUN/borg-rel"
if want asgard; then
  start_server "$RUN/asgard-rel"
  new_agent rel bench
fi
if want restic; then restic -r "$RREL" init -q --repository-version 2 >/dev/null; fi
if want borg; then borg init -e none "$BREL" >/dev/null 2>&1; fi
for v in "${RELEASES[@]}"; do
  extract_release "$v"
  if want asgard; then
    run_timed "asgard.rel-$v" "$RUN/agent-rel/run" backup --json "$DATA/rel/django"
  fi
  if want restic; then
    run_timed "restic.rel-$v" restic -r "$RREL" --compression auto backup -q "$DATA/rel/django"
  fi
  if want borg; then
    run_timed "borg.rel-$v" borg create --compression zstd,3 "$BREL::django-$v" "$DATA/rel/django"
  fi
done
RELEASE_PLAIN="$(for v in "${RELEASES[@]}"; do tar -tzvf "$RELDL/django-$v.tar.gz"; done | awk '{s += $3} END {print s}')"
if want asgard; then
  # The chunk store: the data dir but the metadata db, TLS files, db copies and the lock.
  ADATA="$RUN/asgard-rel/data"
  R[asgard.stored]="$(find "$ADATA" -mindepth 1 -maxdepth 1 ! -name asgard.redb ! -name tls ! -name db-backups ! -name asgard.lock -print0 | xargs -0 -r sh -c 'find "$@" -type f -printf "%s\n"' _ | awk '{s += $1} END {print s + 0}')"
  R[asgard.stored_db]="$(bytes_of "$ADATA/asgard.redb")"
  stop_server
fi
if want restic; then R[restic.stored]="$(bytes_of "$RREL")"; fi
if want borg; then R[borg.stored]="$(bytes_of "$BREL")"; fi

# ---------------------------------------------------------------------------------------------------
# The table.

# Each formatter prints "–" for a figure this run did not measure (a tool left out by --tools).
v() { echo "${R[$1]:-}"; }
mib() { [ -n "$1" ] && awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }' || echo "–"; }
mb() { [ -n "$1" ] && awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }' || echo "–"; }
sec() { [ -n "$1" ] && echo "$1 s" || echo "–"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f×", a / b; else print "–" }'; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f MB/s", b / s / 1e6; else print "–" }'; }

agent_rss() { # the largest peak of the tool's runs on the mixed data
  local a b c
  a="$(v "$1.first_mixed.rss")" b="$(v "$1.re_mixed.rss")" c="$(v "$1.restore_mixed.rss")"
  [ -n "$a" ] || return 0
  echo $((a > b ? (a > c ? a : c) : (b > c ? b : c)))
}

row_time() { # ITEM LABEL TARGET
  echo "| $2 | $(sec "$(v "asgard.$1.s")") | $(sec "$(v "restic.$1.s")") | $(sec "$(v "borg.$1.s")") | $(ratio "$(v "asgard.$1.s")" "$(v "restic.$1.s")") | $3 |"
}

{
  echo
  echo "### AsgardBackup vs restic $(restic version | awk '{print $2}') and Borg $(borg --version | awk '{print $2}') ($SET data set, tools: $TOOLS$([ "$COLD" = 1 ] && echo ', cold cache' || echo ', warm cache'))"
  echo
  echo "mixed: $MIXED_FILES files, $(mb "$MIXED_BYTES_REAL"); small: $SMALL_FILES files, $(mb "$SMALL_BYTES_REAL"); releases: $([ ${#RELEASES[@]} -gt 0 ] && echo "Django ${RELEASES[*]} ($(mb "$RELEASE_PLAIN") unpacked in all)" || echo none). $(nproc) cores; $(uptime | sed 's/.*load average/load average/')."
  echo
  echo "| work | AsgardBackup | restic | Borg | ratio | target |"
  echo "| --- | --- | --- | --- | --- | --- |"
  row_time first_mixed "first backup, mixed" "≤ 0.5× restic"
  row_time re_mixed "unchanged re-backup, mixed" "≤ 0.25× restic"
  row_time restore_mixed "full restore, mixed (verified: diff -r, rsync -aHAX)" "≤ 0.75× restic"
  row_time first_small "first backup, small files" "≤ 0.75× restic"
  row_time re_small "unchanged re-backup, small files" "≤ 0.25× restic"
  echo "| stored bytes after ${#RELEASES[@]} releases | $(mb "$(v asgard.stored)") (+ $(mb "$(v asgard.stored_db)") db) | $(mb "$(v restic.stored)") | $(mb "$(v borg.stored)") | $(ratio "$(v asgard.stored)" "$(v borg.stored)") of Borg | ≤ 0.8× Borg |"
  echo "| agent peak RSS, mixed (backup/re-backup/restore) | $(mib "$(agent_rss asgard)") | $(mib "$(agent_rss restic)") | $(mib "$(agent_rss borg)") | $(ratio "$(agent_rss asgard)" "$(agent_rss restic)") | ≤ 64 MiB |"
  echo "| server peak RSS, $AGENTS agents at once ($(sec "$(v asgard.multi.s)")) | $(mib "$(v asgard.server_multi.rss)") | – | – | – | ≤ 256 MiB |"
  echo
  echo "Ratios: AsgardBackup ÷ restic (times, RSS), ÷ Borg (stored bytes). Server peak RSS over the single-agent runs: $(mib "$(v asgard.server_main.rss)")."
  echo
  echo "| machine limit (same data) | figure |"
  echo "| --- | --- |"
  echo "| tree read, \`tar -cf - mixed \| cat >/dev/null\` | ${R[limits.tar.s]} s = $(rate "$MIXED_BYTES_REAL" "${R[limits.tar.s]}") |"
  echo "| blake3, 1 thread (b3sum, 512 MiB of the mixed tree) | $(rate "$SAMPLE_BYTES" "${R[limits.b3_1.s]}") |"
  echo "| blake3, all cores | $(rate "$SAMPLE_BYTES" "${R[limits.b3_all.s]}") |"
  echo "| zstd -3, 1 thread | $(rate "$SAMPLE_BYTES" "${R[limits.zstd_1.s]}") (to $(awk -v a="$ZSTD_RATIO" -v b="$SAMPLE_BYTES" 'BEGIN {printf "%.0f", 100 * a / b}') %) |"
  echo "| zstd -3, all cores | $(rate "$SAMPLE_BYTES" "${R[limits.zstd_all.s]}") |"
} | tee "$LOG/table.md"
