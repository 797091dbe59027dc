#!/usr/bin/env python3
"""Plot per-packet throughput against packet size from criterion's results.

Run after `cargo bench -p rotorlink-bench --bench aead --bench peers`; reads
target/criterion/{per-packet,seal+open_*}/<series>/<size>/new/estimates.json (medians) and
writes docs/throughput.svg (log-scaled sizes, MB/s of payload encrypted and decrypted).
"""
import json
import math
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRIT = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "criterion"
SIZES = [64, 256, 1400, 8192]
SERIES = [
    ("seal+open_aws-lc/raw-aead", "raw AES-256-GCM (AWS-LC)", "#1b9e77", "6,3"),
    ("per-packet/rotorlink-aws-lc-in-place", "rotorlink in place (AWS-LC)", "#1b9e77", ""),
    ("per-packet/rotorlink-aws-lc", "rotorlink queued (AWS-LC)", "#1b9e77", "2,2"),
    ("seal+open_rustcrypto/raw-aead", "raw AES-256-GCM (RustCrypto)", "#d95f02", "6,3"),
    ("per-packet/rotorlink-rustcrypto", "rotorlink (RustCrypto)", "#d95f02", ""),
    ("per-packet/boringtun", "boringtun (WireGuard)", "#7570b3", ""),
    ("per-packet/snow-aesgcm", "snow (Noise, AES-GCM)", "#e7298a", ""),
    ("per-packet/snow-ring", "snow with ring (Noise, AES-GCM)", "#e6ab02", ""),
]


def median_ns(series, size):
    path = CRIT / series / str(size) / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def main():
    data = {}
    for key, *_ in SERIES:
        try:
            data[key] = [size / median_ns(key, size) * 1e3 for size in SIZES]  # MB/s
        except FileNotFoundError:
            sys.exit(f"missing criterion results for {key}: run the aead and peers benches")
    w, h, left, right, top, bottom = 760, 440, 70, 250, 40, 50
    pw, ph = w - left - right, h - top - bottom
    ymax = max(max(v) for v in data.values()) * 1.1
    xs = lambda s: left + (math.log(s) - math.log(SIZES[0])) / (math.log(SIZES[-1]) - math.log(SIZES[0])) * pw
    ys = lambda v: top + ph - v / ymax * ph
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15">Encrypt + decrypt one packet: payload throughput (MB/s, criterion medians)</text>']
    step = 10 ** math.floor(math.log10(ymax / 5))
    step *= 5 if ymax / step > 25 else (2 if ymax / step > 10 else 1)
    v = 0.0
    while v <= ymax:
        y = ys(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.0f}</text>')
        v += step
    for s in SIZES:
        x = xs(s)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 18}" text-anchor="middle">{s} B</text>')
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 10}" text-anchor="middle">payload size (log scale)</text>')
    out.append(f'<text transform="translate(18,{top + ph / 2}) rotate(-90)" text-anchor="middle">MB/s</text>')
    for i, (key, label, color, dash) in enumerate(SERIES):
        pts = " ".join(f"{xs(s):.1f},{ys(v):.1f}" for s, v in zip(SIZES, data[key]))
        style = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{style}/>')
        for s, v in zip(SIZES, data[key]):
            out.append(f'<circle cx="{xs(s):.1f}" cy="{ys(v):.1f}" r="3" fill="{color}"/>')
        ly = top + 10 + i * 22
        out.append(f'<line x1="{left + pw + 16}" y1="{ly}" x2="{left + pw + 46}" y2="{ly}" stroke="{color}" stroke-width="2"{style}/>')
        out.append(f'<text x="{left + pw + 52}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    target = ROOT / "docs" / "throughput.svg"
    target.write_text("\n".join(out) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
