#!/usr/bin/env bash
# The pilot's sticks and the aircraft's telemetry on radios whose uplink is a sliver of the
# downlink, in real time: `rotorlink aircraft` serving a clip (and video, where asked),
# `rotorlink proxy` in front of it with the demo's radio (5 ms and up to 2 ms of jitter each
# way, 2 % loss) but the rates given, and `rotorlink remote` pairing, unlocking the storage
# and downloading the clip for DURATION, over loopback UDP: three processes, as a user would
# measure it. The real-time companion of tools/narrow-uplink-sweep.sh (BENCHMARKS.md, "An
# uplink narrower than the downlink").
#
#   cargo build --release && tools/realtime-narrow-uplink.sh [ROTORLINK]
#   UPLINKS="300kbit" DOWNLINKS="20mbit" VIDEOS="0" tools/realtime-narrow-uplink.sh
#
# Environment: UPLINKS, DOWNLINKS, VIDEOS (space-separated), SEED (the proxy's radio,
# default 1), DURATION (default 20s). One flight per radio, about DURATION + 3 s each.
#
# Each row is the remote's report (its JSON): control latency as the aircraft measured it
# (it comes in the aircraft's end-of-flight summary), telemetry latency as the remote
# measured it, and the download's goodput. The issue's bound for both is one-way delay +
# jitter + 15 ms: 22 ms here. The whole flight counts, its first second too (pairing, the
# storage unlock and the download's startup).
set -euo pipefail
. "$(dirname "$0")/realtime-common.sh"

BIN=${1:-target/release/rotorlink}
UPLINKS=${UPLINKS:-"100kbit 150kbit 300kbit 500kbit"}
DOWNLINKS=${DOWNLINKS:-"20mbit 40mbit"}
VIDEOS=${VIDEOS:-"0 20mbit"}
SEED=${SEED:-1}
DURATION=${DURATION:-20s}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo 246813 >"$WORK/code"

flight() { # uplink downlink video
    local up=$1 down=$2 video=$3
    "$BIN" aircraft --listen 127.0.0.1:0 --code-file "$WORK/code" --clip-size 256MiB \
        --video "$video" --json >/dev/null 2>"$WORK/aircraft.err" &
    local aircraft=$!
    local port
    port=$(aircraft_port "$WORK/aircraft.err")
    "$BIN" proxy --listen 127.0.0.1:0 --forward "127.0.0.1:$port" --rate "$down" \
        --uplink-rate "$up" --delay 5ms --jitter 2ms --loss 2% --seed "$SEED" \
        >/dev/null 2>"$WORK/proxy.err" &
    local proxy=$!
    local listen
    listen=$(proxy_port "$WORK/proxy.err")
    "$BIN" remote --connect "127.0.0.1:$listen" --code-file "$WORK/code" --download clip \
        --duration "$DURATION" --json >"$WORK/remote.json" 2>/dev/null || true
    # The aircraft prints the report the remote sent it, then exits on its own.
    sleep 1
    kill "$aircraft" "$proxy" 2>/dev/null || true
    wait "$aircraft" "$proxy" 2>/dev/null || true
    python3 - "$WORK/remote.json" "$up" "$down" "$video" <<'EOF'
import json, sys

path, up, down, video = sys.argv[1:5]
try:
    report = json.load(open(path))
except (OSError, ValueError):
    print(f"| {up} | {down} | {video} | no report | | | |")
    sys.exit()

def ms(latency, key):
    value = (latency or {}).get(key)
    return "?" if value is None else f"{value:.1f}"

control = report["channels"]["control"]["latency"]
telemetry = report["channels"]["telemetry"]["latency"]
goodput = report["download"].get("goodput_mbps")
print(f"| {up} | {down} | {video} | {ms(control, 'p50_ms')} / {ms(control, 'p99_ms')} / "
      f"{ms(control, 'max_ms')} | {ms(telemetry, 'p99_ms')} | "
      f"{'?' if goodput is None else f'{goodput:.2f}'} |")
EOF
}

echo "| uplink | downlink | video | control p50 / p99 / max ms | telemetry p99 ms | download Mbit/s |"
echo "|---:|---:|---:|---:|---:|---:|"
for up in $UPLINKS; do
    for down in $DOWNLINKS; do
        for video in $VIDEOS; do
            flight "$up" "$down" "$video"
        done
    done
done
