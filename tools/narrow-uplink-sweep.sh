#!/usr/bin/env bash
# The pilot's sticks and the aircraft's telemetry on radios whose uplink is a sliver of the
# downlink, while a download runs (and video, where asked): `rotorlink sim` over a grid of
# uplink rates, downlink rates and video, several seeds each, summarised per radio as a
# markdown table (BENCHMARKS.md, "An uplink narrower than the downlink").
#
# Usage: tools/narrow-uplink-sweep.sh [ROTORLINK]   (default: target/release/rotorlink)
# Environment: UPLINKS, DOWNLINKS, VIDEOS, SEEDS (space-separated), DURATION.
#
# Each cell is over the seeds: the mean of the runs' p99 latency, the largest, and how many
# runs' p99 exceeded the issue's bound (one-way delay + jitter + 15 ms: 22 ms on the demo's
# radio of 5 ms and 2 ms of jitter each way); the download's mean goodput.
set -euo pipefail

bin=${1:-target/release/rotorlink}
uplinks=${UPLINKS:-100kbit 150kbit 300kbit 500kbit}
downlinks=${DOWNLINKS:-10mbit 40mbit}
videos=${VIDEOS:-0 20mbit}
seeds=${SEEDS:-4 5 6 7 8 9}
duration=${DURATION:-20s}
bound=22

echo "| uplink | downlink | video | control p99 mean / max ms | over $bound ms | telemetry p99 mean / max ms | over $bound ms | download Mbit/s |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for up in $uplinks; do
    for down in $downlinks; do
        for video in $videos; do
            for seed in $seeds; do
                "$bin" sim --seed "$seed" --rate "$down" --uplink-rate "$up" --video "$video" \
                    --duration "$duration" --download clip --clip-size 256MiB 2>/dev/null |
                    awk '$1 == "control" { c = $9 } $1 == "telemetry" { t = $9 }
                         $1 == "download" { d = $(NF - 1) } END { print c, t, d }'
            done | awk -v up="$up" -v down="$down" -v video="$video" -v bound="$bound" '
                { n++; c += $1; if ($1 > cm) cm = $1; if ($1 > bound) co++
                  t += $2; if ($2 > tm) tm = $2; if ($2 > bound) to++; d += $3 }
                END { printf "| %s | %s | %s | %.1f / %.1f | %d of %d | %.1f / %.1f | %d of %d | %.2f |\n",
                      up, down, video, c / n, cm, co, n, t / n, tm, to, n, d / n }'
        done
    done
done
