#!/usr/bin/env bash
# A download through the Linux kernel's own rate limiter instead of `rotorlink proxy`: a
# radio measured with another tool than the project's. Needs root (network namespaces).
#
#   sudo tools/tbf-check.sh [ROTORLINK]                   # 5, 20 and 100 Mbit/s
#   sudo RATES="20" UPLINK=500kbit tools/tbf-check.sh      # one rate, a narrow uplink
#
# Two network namespaces joined by a veth pair, each end's egress shaped by a token bucket
# (`tc qdisc ... tbf`: RATE Mbit/s, a burst of 16 KiB, at most 20 ms of queue; the uplink
# at UPLINK if given), no added delay or loss (the kernel here has no netem). `rotorlink
# aircraft` serves a clip of 8 s of the rate (at least 4 MiB) with no video in one
# namespace, `rotorlink remote` pairs, unlocks the storage and downloads it (SHA-256
# checked) from the other. Printed per rate: the remote's goodput, its ratio to the rate,
# and its ratio to the most the shaper lets through: tbf counts whole Ethernet frames (42
# bytes of Ethernet, IP and UDP around every 1400-byte datagram), so a 20 Mbit/s bucket
# carries 19.42 Mbit/s of datagrams.
set -euo pipefail

BIN=$(realpath "${1:-target/release/rotorlink}")
TOOLS=$(dirname "$0")
RATES=${RATES:-"5 20 100"}
UPLINK=${UPLINK:-}
WORK=$(mktemp -d)
A=rl-tbf-aircraft
R=rl-tbf-remote
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$R" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
echo 246813 >"$WORK/code"

point() { # rate_mbit
    local rate=$1
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$R" 2>/dev/null || true
    ip netns add "$A"
    ip netns add "$R"
    ip link add rl-tbf-a type veth peer name rl-tbf-r
    ip link set rl-tbf-a netns "$A"
    ip link set rl-tbf-r netns "$R"
    ip -n "$A" addr add 10.47.0.1/24 dev rl-tbf-a
    ip -n "$R" addr add 10.47.0.2/24 dev rl-tbf-r
    ip -n "$A" link set rl-tbf-a up
    ip -n "$R" link set rl-tbf-r up
    ip netns exec "$A" tc qdisc add dev rl-tbf-a root tbf rate "${rate}mbit" burst 16kb latency 20ms
    ip netns exec "$R" tc qdisc add dev rl-tbf-r root tbf rate "${UPLINK:-${rate}mbit}" burst 16kb \
        latency 20ms
    local bytes=$((rate * 1000000))
    [ "$bytes" -lt 4194304 ] && bytes=4194304
    ip netns exec "$A" "$BIN" aircraft --listen 10.47.0.1:47474 --code-file "$WORK/code" \
        --clip-size "$bytes" --video 0 --json >/dev/null 2>"$WORK/aircraft.err" &
    local aircraft=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$WORK/aircraft.err" && break
        sleep 0.05
    done
    ip netns exec "$R" "$BIN" remote --connect 10.47.0.1:47474 --code-file "$WORK/code" \
        --download clip --until-downloaded --duration 200s --json >"$WORK/remote.json" \
        2>/dev/null || true
    kill "$aircraft" 2>/dev/null || true
    wait "$aircraft" 2>/dev/null || true
    local goodput
    if goodput=$(python3 "$TOOLS/download-goodput.py" "$WORK/remote.json"); then
        # tbf passes 1400 bytes of every 1442 (Ethernet, IP and UDP around each datagram).
        awk -v g="$goodput" -v r="$rate" 'BEGIN {
            printf "%5.0f Mbit/s  %7.2f Mbit/s  ratio %.3f  of what tbf passes %.3f\n",
                r, g, g / r, g / (r * 1400 / 1442)
        }'
    else
        printf '%5.0f Mbit/s  %s\n' "$rate" "$goodput"
    fi
}

echo "rate    goodput        ratio to the rate, and to what tbf passes of 1400-byte datagrams"
for rate in $RATES; do
    point "$rate"
done
