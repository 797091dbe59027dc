#!/usr/bin/env bash
# Check that tshark and the rotorlink Lua dissector decode the bodies of a decrypted capture.
#
#   tools/wireshark/check_decrypted.sh DECRYPTED
#
# DECRYPTED is what `rotorlink decrypt CAPTURE --keylog K -o DECRYPTED` writes from a whole
# link's capture (`rotorlink sim --pcap CAPTURE --keylog K`). The checks:
#
#   - every record is rotorlink on UDP port 47475 and decodes with no expert info of
#     warning level or above;
#   - every encrypted frame with a body shows its plaintext, and its body's fields
#     (PROTOCOL.md 6): a video fragment its message id, index, data and parity counts and
#     kind (data or parity: the FEC layout, 6.2); a reliable segment its sequence; an Ack
#     its next expected sequence; a Feedback its lost counters and loss runs; a Repair (if
#     any: sent only at a storage transfer's tail on a lossy path) its first sequence,
#     segment count (1 to 4096), parity count (at least 1), index (below the parity count)
#     and shard (non-empty, of even length);
#   - video fragments of both kinds appear, and no fragment's index is past its message's
#     data + parity count.
#
# It prints a short summary and exits 0, or names the failed check and exits 1. The
# dissector is tools/wireshark/rotorlink.lua, or $ROTORLINK_DISSECTOR.
set -euo pipefail

name=check_decrypted.sh
usage=DECRYPTED
# shellcheck source=shark.sh
. "$(dirname "$0")/shark.sh"

shark -Y '_ws.expert.severity >= 0x00600000' -T fields -e frame.number -e _ws.expert.message \
    >"$work/experts"
if [ -s "$work/experts" ]; then
    head -n 10 "$work/experts" >&2
    fail "$(wc -l <"$work/experts") records have expert infos of warning level or above"
fi

fields=(frame.number udp.dstport rotorlink.type rotorlink.channel rotorlink.ciphertext_len
    rotorlink.plaintext rotorlink.video.message_id rotorlink.video.index rotorlink.video.count
    rotorlink.video.parity rotorlink.video.kind rotorlink.segment.sequence
    rotorlink.ack.next_expected rotorlink.feedback.lost rotorlink.feedback.loss_runs
    rotorlink.repair.first_seq rotorlink.repair.count rotorlink.repair.parity
    rotorlink.repair.index rotorlink.repair.shard rotorlink.feedback.unjudged)
args=(-T fields -E occurrence=f -E separator=/t)
for field in "${fields[@]}"; do
    args+=(-e "$field")
done
shark "${args[@]}" >"$work/fields"
[ -s "$work/fields" ] || fail "$capture has no records"

awk -F '\t' '
function bad(msg) {
    printf "check_decrypted.sh: frame %s: %s\n", $1, msg > "/dev/stderr"
    failed = 1
    exit 1
}
function need(col, name) { if ($col == "") bad("no " name) }
{
    n++
    if ($2 != 47475) bad("UDP port " $2 ", not 47475 (not decrypted?)")
    type = $3
    if (type == "0x10" || type == "0x11" || type == "0x13" || type == "0x14" || type == "0x15") {
        if ($5 > 0) need(6, "plaintext")
    }
    if (type == "0x10" && $4 == 3) {
        need(7, "video message id"); need(8, "fragment index"); need(9, "data count")
        need(10, "parity count"); need(11, "fragment kind")
        if ($8 >= $9 + $10) bad("fragment " $8 " of a message of " $9 " + " $10)
        kind[$11]++
        messages[$7] = 1
        if ($10 > max_parity) max_parity = $10
        if ($11 == "data") data_of[$7]++
    } else if (type == "0x10" && ($4 == 0 || $4 == 4)) {
        need(12, "segment sequence"); segments++
    } else if (type == "0x11") {
        need(13, "next expected"); acks++
    } else if (type == "0x14") {
        need(14, "lost counters"); need(15, "loss runs"); need(21, "unjudged counters")
        if ($21 > 1024) bad($21 " counters not judged (at most 1024)")
        feedback++
    } else if (type == "0x15") {
        need(16, "repair first sequence"); need(17, "repair segment count")
        need(18, "repair parity count"); need(19, "repair index"); need(20, "repair shard")
        if ($17 < 1 || $17 > 4096) bad("a Repair block of " $17 " segments (1 to 4096)")
        if ($19 >= $18) bad("parity shard " $19 " of a Repair block of " $18)
        # The shard in hex (older tsharks separate the bytes with colons).
        shard = $20
        gsub(/:/, "", shard)
        if (length(shard) % 4 != 0) bad("a Repair shard of odd length " length(shard) / 2)
        repairs++
        blocks[$16 "+" $17] = 1
    }
}
END {
    if (failed) exit 1
    if (!("data" in kind) || !("parity" in kind)) {
        print "check_decrypted.sh: video fragments of both kinds expected" > "/dev/stderr"; exit 1
    }
    m = 0; for (id in messages) m++
    printf "%d records decoded on port 47475, no expert warnings\n", n
    printf "video: %d messages, %d data and %d parity fragments (at most %d parity per message)\n", \
        m, kind["data"], kind["parity"], max_parity
    printf "reliable segments %d, acks %d, feedback %d (lost, loss runs and unjudged decoded)\n", \
        segments, acks, feedback
    b = 0; for (k in blocks) b++
    printf "repair: %d parity shards over %d blocks\n", repairs, b
}
' "$work/fields"
echo "ok: $capture decodes with $(basename "$dissector")"
