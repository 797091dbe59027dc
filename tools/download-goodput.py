#!/usr/bin/env python3
"""The goodput of a `rotorlink remote --json` report's download, for the tools' scripts.

Prints the download's goodput in Mbit/s if the file arrived whole (SHA-256 checked);
otherwise prints what the report says of it and exits 1.
"""
import json
import sys

try:
    download = json.load(open(sys.argv[1])).get("download") or {}
except (OSError, ValueError):
    download = {}
goodput = download.get("goodput_mbps")
if goodput and download.get("verified"):
    print(goodput)
else:
    print(f"not downloaded whole: {download}")
    sys.exit(1)
