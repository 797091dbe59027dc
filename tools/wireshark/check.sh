#!/usr/bin/env bash
# Check that tshark and the rotorlink Lua dissector decode a capture of a whole link.
#
#   tools/wireshark/check.sh CAPTURE
#
# CAPTURE is a pcap with every frame both ends sent from the start of the link, such as
# `rotorlink sim --duration 3s --pcap CAPTURE` writes (or, with every handshake kind,
# `rotorlink sim --duration 7s --outage 1s..2.5s,3s..6s --resume-lifetime 2s --pcap CAPTURE`).
# The checks:
#
#   - every record is rotorlink, and decodes with no expert info of warning level or above
#     (IPv4 and UDP checksums are verified too);
#   - every header field is there: version 2, type, flags, key phase, channel, receiver
#     index, packet number; and the payload, which with the 12-byte header accounts for the
#     whole UDP payload (there is no length field: the payload is the rest of the datagram);
#   - encrypted frames (Data, Ack, Keepalive, Close, Feedback, Repair): ciphertext length =
#     payload length - 16, and a tag; the plaintext length each body allows (PROTOCOL.md
#     6.4-6.9: Ack 7 + 6n with n <= 32, Feedback 50, Keepalive 0, Close 2, Repair 10 + a
#     non-empty shard of even length; a capture has Repair frames only if a storage transfer
#     ended on a lossy path);
#   - handshake frames: packet number 0, the message name, a kind (Init, Response, Finish),
#     sender indices (Init, pairing Response), a reason (Refusal), and the datagram length
#     of PROTOCOL.md 17.1 (Init Pair 162, Session 102, Resume 110; Response Pair 373,
#     Session and Resume 65; Finish Pair 77, Session and Resume 29; Refusal 21);
#   - the handshake messages Init, Response and Finish appear (of each kind that
#     $ROTORLINK_HANDSHAKES names, e.g. "Pair Session Resume"; the CI capture has a link cut
#     resumed and one renewed with the bond), Data on all four
#     application channels (control, telemetry, video, storage), and Feedback (PROTOCOL.md
#     34: both ends receive, so both report);
#   - the packet numbers (the low 32 bits of the counters) of each sender and session
#     (source address, receiver index) go 0, 1, 2, ... in capture order, as every frame
#     sent is in the capture;
#   - with the UDP port turned off (-o rotorlink.udp_port:0), the heuristic dissector still
#     finds every record.
#
# It prints a short summary and exits 0, or names the failed check and exits 1. The
# dissector is tools/wireshark/rotorlink.lua, or $ROTORLINK_DISSECTOR.
set -euo pipefail

name=check.sh
usage=CAPTURE
# shellcheck source=shark.sh
. "$(dirname "$0")/shark.sh"

fields=(
    frame.number ip.src udp.length
    rotorlink.version rotorlink.type rotorlink.flags rotorlink.flags.key_phase
    rotorlink.flags.reserved rotorlink.channel rotorlink.receiver_index
    rotorlink.packet_number rotorlink.payload rotorlink.ciphertext_len rotorlink.tag
    rotorlink.hs.message rotorlink.hs.kind rotorlink.hs.sender_index rotorlink.hs.reason
)
args=(-T fields -E occurrence=f -E separator=/t)
for field in "${fields[@]}"; do
    args+=(-e "$field")
done
shark "${args[@]}" >"$work/fields"

records="$(shark -T fields -e frame.number | wc -l)"
[ "$records" -gt 0 ] || fail "$capture has no records"

# Expert infos of warning level and above, any protocol, with checksums verified.
shark -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -Y '_ws.expert.severity >= 0x00600000' -T fields -e frame.number -e _ws.expert.message \
    >"$work/experts"
if [ -s "$work/experts" ]; then
    head -n 10 "$work/experts" >&2
    fail "$(wc -l <"$work/experts") records have expert infos of warning level or above"
fi

# The heuristic alone: no port registration.
heuristic="$(shark -o rotorlink.udp_port:0 -Y rotorlink -T fields -e frame.number | wc -l)"
[ "$heuristic" -eq "$records" ] ||
    fail "the heuristic dissector finds $heuristic of $records records"

awk -F '\t' -v records="$records" -v want_kinds="${ROTORLINK_HANDSHAKES:-}" '
function bad(msg) {
    printf "check.sh: frame %s: %s\n", $1, msg > "/dev/stderr"
    failed = 1
    exit 1
}
function need(col, name) {
    if ($col == "") bad("no " name)
}
{
    n++
    for (i = 4; i <= 11; i++) need(i, "header field " fields[i])
    need(12, "payload")
    if ($4 != 2) bad("version " $4)
    if (!($5 in type_of)) bad("unknown type " $5)
    type = type_of[$5]
    # The payload in hex (older tsharks separate the bytes with colons).
    payload = $12
    gsub(/:/, "", payload)
    plen = length(payload) / 2
    if (plen + 12 + 8 != $3) bad("a payload of " plen " bytes but UDP length " $3 " (12-byte header)")
    types[type]++
    if (type >= 16 && type <= 21) {
        need(13, "ciphertext length")
        need(14, "tag")
        if ($13 != plen - 16) bad("ciphertext length " $13 " of a " plen "-byte payload")
        if (type == 16) data[$9]++
        if (type == 17 && ($13 < 7 || ($13 - 7) % 6 != 0 || $13 > 7 + 6 * 32))
            bad("an Ack of " $13 " plaintext bytes (7 + 6n, n <= 32)")
        if (type == 17) ranges[($13 - 7) / 6]++
        if (type == 21 && ($13 < 12 || ($13 - 10) % 2 != 0))
            bad("a Repair of " $13 " plaintext bytes (10 + a non-empty shard of even length)")
        if (type in body_len && $13 != body_len[type])
            bad("a " type_name[type] " of " $13 " plaintext bytes, not " body_len[type])
        # Packet numbers (the low 32 bits of the counters): 0, 1, 2, ... per sender and session.
        stream = $2 " " $10
        expect = (stream in next_pn) ? next_pn[stream] : 0
        if ($11 != expect)
            bad("packet number " $11 " from " $2 " to receiver " $10 ", expected " expect)
        next_pn[stream] = ($11 + 1) % 4294967296
        sent[stream]++
        if (!(stream in first)) { first[stream] = n; streams++ }
    } else if (type >= 1 && type <= 4) {
        need(15, "handshake message")
        if ($11 != 0) bad("handshake packet number " $11)
        if (type == 4) {
            need(18, "refusal reason")
            m = "Refusal"
        } else {
            need(16, "handshake kind")
            m = $15 " " (($16 in kind_name) ? kind_name[$16] : "kind " $16)
            msgs[m]++
        }
        if (m in hs_len && $3 - 8 != hs_len[m])
            bad("a " m " datagram of " ($3 - 8) " bytes, not " hs_len[m])
        # In the clear in an Init and a pairing Response; inside Noise in a keyed Response.
        if (type == 1 || (type == 2 && $16 == 1)) need(17, "sender index")
    }
}
BEGIN {
    split("frame ip udp version type flags key_phase reserved channel receiver_index packet_number payload", fields, " ")
    # tshark prints the type in hex, as the dissector displays it.
    split("0x01 0x02 0x03 0x04 0x10 0x11 0x12 0x13 0x14 0x15", hex, " ")
    split("1 2 3 4 16 17 18 19 20 21", dec, " ")
    for (i = 1; i <= 10; i++) type_of[hex[i]] = dec[i] + 0
    # Encrypted bodies of fixed size (PROTOCOL.md 6.5, 6.8); a keepalive may carry padding
    # of any length (6.6).
    body_len[19] = 2; body_len[20] = 50
    type_name[18] = "Keepalive"; type_name[19] = "Close"; type_name[20] = "Feedback"
    kind_name[1] = "Pair"; kind_name[2] = "Session"; kind_name[3] = "Resume"
    # Handshake datagram lengths: 12-byte header + message (PROTOCOL.md 17.1).
    hs_len["Init Pair"] = 162; hs_len["Init Session"] = 102; hs_len["Init Resume"] = 110
    hs_len["Response Pair"] = 373; hs_len["Response Session"] = 65; hs_len["Response Resume"] = 65
    hs_len["Finish Pair"] = 77; hs_len["Finish Session"] = 29; hs_len["Finish Resume"] = 29
    hs_len["Refusal"] = 21
}
END {
    if (failed) exit 1
    if (n != records) { print "check.sh: " n " decoded of " records " records" > "/dev/stderr"; exit 1 }
    split("Init Response Finish", names, " ")
    for (t = 1; t <= 3; t++) if (!(t in types)) {
        print "check.sh: no handshake " names[t] > "/dev/stderr"; exit 1
    }
    nk = split(want_kinds, kinds, " ")
    for (k = 1; k <= nk; k++) for (t = 1; t <= 3; t++) if (!((names[t] " " kinds[k]) in msgs)) {
        print "check.sh: no " names[t] " of kind " kinds[k] > "/dev/stderr"; exit 1
    }
    split("control telemetry video storage", chans, " ")
    for (c = 1; c <= 4; c++) if (!(c in data)) {
        print "check.sh: no Data on channel " c " (" chans[c] ")" > "/dev/stderr"; exit 1
    }
    if (!(20 in types)) { print "check.sh: no Feedback" > "/dev/stderr"; exit 1 }
    printf "%d records, all rotorlink, every header field decoded, no expert warnings\n", n
    printf "handshake messages:"
    split("Init Response Finish", message, " ")
    sep = " "
    for (i = 1; i <= 3; i++) for (k = 1; k <= 3; k++) {
        m = message[i] " " kind_name[k]
        if (m in msgs) { printf "%s%s %d", sep, m, msgs[m]; sep = ", " }
    }
    printf "%sRefusal %d\n", sep, types[4]
    printf "Data by channel: session %d, control %d, telemetry %d, video %d, storage %d\n", \
        data[0], data[1], data[2], data[3], data[4]
    printf "Ack %d, Keepalive %d, Close %d, Feedback %d, Repair %d\n", types[17], types[18], \
        types[19], types[20], types[21]
    printf "Ack SACK ranges (from the length):"
    sep = " "
    for (r = 0; r <= 32; r++) if (r in ranges) { printf "%s%d: %d", sep, r, ranges[r]; sep = ", " }
    printf "%s\n", (sep == " ") ? " none" : ""
    printf "packet numbers: %d streams, each 0, 1, 2, ... without a gap\n", streams
    for (s in sent) {
        split(s, part, " ")
        printf "  from %s to receiver index %s: 0..%d\n", part[1], part[2], sent[s] - 1
    }
}
' "$work/fields"

echo "heuristic dissector (port 47474 off): $heuristic of $records records"
echo "ok: $capture decodes with $(basename "$dissector")"
