#!/usr/bin/env bash
# The transport grid in real time: a download through `rotorlink proxy` over loopback UDP,
# three processes, as a user would measure it.
#
#   tools/realtime-grid.sh [ROTORLINK]            # the whole grid (about 11 min)
#   RATES="20" DELAYS="15" tools/realtime-grid.sh  # a subset
#   QUEUE_MS=20 tools/realtime-grid.sh             # a shallow radio queue
#   JITTER=10ms tools/realtime-grid.sh             # a jittery radio (reorders)
#   TELEMETRY=1 tools/realtime-grid.sh             # and the aircraft's telemetry latency
#
# ROTORLINK is the binary (default target/release/rotorlink; `cargo build --release`
# first). For each point: `rotorlink aircraft` serving a clip of 8 s of the capacity (at
# least 4 MiB) with no video, `rotorlink proxy` in front of it with the rate, the one-way
# delay and the loss (independent, or Gilbert-Elliott bursts of mean 8 for "5b"), both
# ways, and a drop-tail queue of one bandwidth-delay product (at least 64 KiB; QUEUE_MS:
# that many milliseconds of the rate, at least a datagram), the transport bench's radio; then `rotorlink remote` pairs, unlocks the storage and
# downloads the clip (SHA-256 checked). The line printed per point is the remote's
# `download.goodput_mbps` (from its READ to the last byte) and its ratio to
# (1 - loss) x rate.
#
# Unlike the transport bench (virtual time, the storage channel's data path alone), this
# is the whole link: the aircraft's telemetry (10 ms apart) and both ends' feedback share
# the radio with the download, the proxy's timers tick in whole milliseconds, and the
# three processes share the machine's cores. SEED (default 1) seeds the proxy's radio.
set -euo pipefail
. "$(dirname "$0")/realtime-common.sh"

BIN=${1:-target/release/rotorlink}
TOOLS=$(dirname "$0")
RATES=${RATES:-"5 20 100"}
DELAYS=${DELAYS:-"5 15 75"}
LOSSES=${LOSSES:-"0 1 10 20 5b"}
SEED=${SEED:-1}
QUEUE_MS=${QUEUE_MS:-}
JITTER=${JITTER:-0ms}
TELEMETRY=${TELEMETRY:-}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo 246813 >"$WORK/code"

point() { # rate_mbit delay_ms loss
    local rate=$1 delay=$2 loss=$3 percent burst=()
    if [ "$loss" = 5b ]; then percent=5; burst=(--burst 8); else percent=$loss; fi
    local bytes=$((rate * 1000000))
    [ "$bytes" -lt 4194304 ] && bytes=4194304
    local queue=$((rate * 1000000 / 8 * 2 * delay / 1000))
    [ "$queue" -lt 65536 ] && queue=65536
    if [ -n "$QUEUE_MS" ]; then
        queue=$((rate * 1000000 / 8 * QUEUE_MS / 1000))
        [ "$queue" -lt 1400 ] && queue=1400
    fi
    "$BIN" aircraft --listen 127.0.0.1:0 --code-file "$WORK/code" --clip-size "$bytes" \
        --video 0 --json >/dev/null 2>"$WORK/aircraft.err" &
    local aircraft=$!
    local port
    port=$(aircraft_port "$WORK/aircraft.err")
    "$BIN" proxy --listen 127.0.0.1:0 --forward "127.0.0.1:$port" --rate "${rate}mbit" \
        --delay "${delay}ms" --jitter "$JITTER" --loss "$percent%" "${burst[@]}" --queue "$queue" \
        --seed "$SEED" >/dev/null 2>"$WORK/proxy.err" &
    local proxy=$!
    local listen
    listen=$(proxy_port "$WORK/proxy.err")
    "$BIN" remote --connect "127.0.0.1:$listen" --code-file "$WORK/code" --download clip \
        --until-downloaded --duration 200s --json >"$WORK/remote.json" 2>/dev/null || true
    kill "$aircraft" "$proxy" 2>/dev/null || true
    wait "$aircraft" "$proxy" 2>/dev/null || true
    local goodput
    if goodput=$(python3 "$TOOLS/download-goodput.py" "$WORK/remote.json"); then
        awk -v g="$goodput" -v r="$rate" -v l="$percent" \
            'BEGIN { printf "%8.2f Mbit/s  ratio %.3f", g, g / ((1 - l / 100) * r) }'
        if [ -n "$TELEMETRY" ]; then
            python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["channels"]["telemetry"]["latency"] or {}
print("  telemetry p99 %s ms, max %s ms" % (t.get("p99_ms"), t.get("max_ms")))' "$WORK/remote.json"
        else
            echo
        fi
    else
        echo "     $goodput"
    fi
}

echo "rate    delay  loss  goodput          ratio to (1 - loss) x rate  (seed $SEED${QUEUE_MS:+, queue $QUEUE_MS ms}, jitter $JITTER)"
for rate in $RATES; do
    for delay in $DELAYS; do
        for loss in $LOSSES; do
            printf '%3s Mbit/s %3s ms %4s  ' "$rate" "$delay" "$loss"
            point "$rate" "$delay" "$loss"
        done
    done
done
