#!/usr/bin/env bash
# Issue 14, acceptance 4 (udown): getting 1 GiB back in the browser next to the CLI restore.
#
#   bench/web_download.sh            # 1 GiB; SIZE_MIB=256 bench/web_download.sh for a quick run
#
# Builds the release binaries, starts a server on a temp data dir, backs up (a) one file of
# SIZE_MIB MiB and (b) a folder of SIZE_MIB MiB in 100 KiB files, all seeded random bytes (no
# dedupe, no compression), then measures over HTTPS on 127.0.0.1:
#   - `GET /my/download/{version}` of the single file (curl: time to first byte, total),
#   - `GET /my/zip?device=&path=` of the folder (the streamed zip),
#   - `asgard-agent restore` of the same file and folder (wall time),
# and prints one table with time to first byte and MiB/s. Needs curl, jq and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
cargo build --release -q -p asgard-server -p asgard-agent
BIN=$PWD/target/release
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "generating ${SIZE_MIB} MiB twice in $WORK ..." >&2
python3 - "$WORK/src" "$SIZE_MIB" <<'EOF'
import os, random, sys
root, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(14)
os.makedirs(f"{root}/single")
with open(f"{root}/single/gross.bin", "wb") as f:
    for _ in range(mib):
        f.write(rng.randbytes(1 << 20))
n = mib * 1024 // 100
for i in range(n):
    d = f"{root}/ordner/d{i // 100:03}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:05}", "wb") as f:
        f.write(rng.randbytes(100 * 1024))
EOF

"$BIN/asgard-server" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
for _ in $(seq 600); do
    URL=$(grep -o 'https://[^ ]*' "$WORK/server.out" | head -1 || true)
    [ -n "$URL" ] && break
    sleep 0.1
done
[ -n "$URL" ] || { cat "$WORK/server.err" >&2; exit 1; }

agent() {
    USER=bench USERNAME=bench ASGARD_DEVICE=benchhost TZ=UTC \
        "$BIN/asgard-agent" --server "$URL" --state-dir "$WORK/agent" "$@"
}
echo "backing up ..." >&2
agent backup --json "$WORK/src/single" >/dev/null
agent backup --json "$WORK/src/ordner" >/dev/null
TOKEN=$(jq -r .token "$WORK/agent/state.json")
VERSION=$(agent list --json "$WORK/src/single/gross.bin" | jq '.[0].versions[0].id')
LINK=$(curl -sk -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{}' "$URL/api/web-link" | jq -r .path)
COOKIE=$(curl -sk -o /dev/null -D - "$URL$LINK" | tr -d '\r' |
    sed -n 's/^[Ss]et-[Cc]ookie: \(asgard_session=[^;]*\).*/\1/p' | head -1)
HEX=$(printf '%s' "$WORK/src/ordner" | od -An -tx1 | tr -d ' \n')

# curl: time to first byte, total time, bytes
fetch() {
    curl -sk -o /dev/null -H "Cookie: $COOKIE" -w '%{time_starttransfer} %{time_total} %{size_download} %{http_code}' "$1"
}
row() { # name ttfb total bytes
    python3 -c "import sys; n,f,t,b=sys.argv[1],float(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4]); \
print(f'| {n} | {f*1000:.0f} ms | {t:.2f} s | {b/t/2**20:.0f} MiB/s |')" "$@"
}
echo "measuring ..." >&2
read -r F1 T1 B1 C1 < <(fetch "$URL/my/download/$VERSION"; echo) || true
[ "$C1" = 200 ] || { echo "download: HTTP $C1" >&2; exit 1; }
read -r F2 T2 B2 C2 < <(fetch "$URL/my/zip?device=benchhost&path=$HEX"; echo) || true
[ "$C2" = 200 ] || { echo "zip: HTTP $C2" >&2; exit 1; }
S=$(date +%s.%N); agent restore "$WORK/src/single/gross.bin" --to "$WORK/r1" >/dev/null; E=$(date +%s.%N)
T3=$(python3 -c "print($E - $S)")
S=$(date +%s.%N); agent restore "$WORK/src/ordner" --to "$WORK/r2" >/dev/null; E=$(date +%s.%N)
T4=$(python3 -c "print($E - $S)")
BYTES=$((SIZE_MIB * 1024 * 1024))
FOLDER=$(du -sb "$WORK/src/ordner" | cut -f1)

echo "| ${SIZE_MIB} MiB | time to first byte | total | throughput |"
echo "| --- | --- | --- | --- |"
row "browser: one file (/my/download)" "$F1" "$T1" "$B1"
row "browser: folder as zip (/my/zip)" "$F2" "$T2" "$B2"
row "CLI: asgard-agent restore of the file" 0 "$T3" "$BYTES" | sed 's/| 0 ms |/| – |/'
row "CLI: asgard-agent restore of the folder" 0 "$T4" "$FOLDER" | sed 's/| 0 ms |/| – |/'
