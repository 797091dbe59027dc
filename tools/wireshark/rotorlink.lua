-- rotorlink.lua: a Wireshark dissector for the rotorlink protocol, version 2.
--
-- The wire format is PROTOCOL.md: section 3 (frame format), 4 (frame types), 5 (channels),
-- 6 (plaintext bodies: their lengths) and 17 (handshake messages); section 30 ("Captures")
-- says how captures are made.
--
-- Use it for one run:
--   wireshark -X lua_script:tools/wireshark/rotorlink.lua capture.pcap
--   tshark -X lua_script:tools/wireshark/rotorlink.lua -r capture.pcap -V
-- or for good, by copying it into the personal Lua plugins folder (Wireshark: Help >
-- About Wireshark > Folders > Personal Lua Plugins; usually ~/.local/lib/wireshark/plugins).
--
-- It is registered on UDP port 47474 (the fixed port of captures; preference
-- rotorlink.udp_port, 0 to turn the port off) and as the heuristic UDP dissector
-- "rotorlink_udp", which claims a datagram on any port only if it is a well-formed frame:
-- version 2, at most 16384 bytes, a known type, flags and channel valid for the type, for
-- encrypted frames a payload of at least the 16-byte tag, and for handshake frames packet
-- number 0 and the exact length of a message of the kind in the first payload byte.
--
-- A frame is a 12-byte header, then the payload: the rest of the datagram (there is no
-- length field). Frames are decoded whatever the checks of PROTOCOL.md 3.1 say; each failed
-- check adds an expert info (rotorlink.malformed), never a Lua error.
--
-- Fields (display filter names):
--   rotorlink.version              u8    protocol version (2)
--   rotorlink.type                 u8    frame type, with its name (HandshakeInit ... Repair)
--   rotorlink.flags                u8    flags byte
--   rotorlink.flags.key_phase      u8    bit 0x01: key phase (encrypted frames)
--   rotorlink.flags.reserved       u8    bits 0xfe: reserved, 0
--   rotorlink.channel              u8    channel byte, with its name for Data and Ack
--                                        (0 Session, 1 Control, 2 Telemetry, 3 Video,
--                                        4 Storage); "none" on the other types
--   rotorlink.receiver_index       u32   receiver index
--   rotorlink.packet_number        u32   packet number: the low 32 bits of the sender's
--                                        64-bit frame counter (the AEAD nonce; the
--                                        receiver recovers the rest); 0 in handshakes
--   rotorlink.payload              bytes the payload: the rest of the datagram
--   encrypted frames (types 0x10..0x15: Data, Ack, Keepalive, Close, Feedback, Repair;
--   the dissector holds no keys and decrypts nothing, so an Ack's ranges, a Feedback's
--   counts and a Repair's block stay ciphertext, and only the plaintext length is checked;
--   the Info column gives an Ack's number of SACK ranges, which follows from that length):
--   rotorlink.ciphertext           bytes ciphertext, without the tag
--   rotorlink.ciphertext_len       u16   ciphertext length (= plaintext length): Close 2,
--                                        Feedback 50, Ack 7 + 6n (n <= 32 SACK ranges,
--                                        PROTOCOL.md 6.4), Repair 10 + a non-empty shard
--                                        of even length (12, 14, ...; PROTOCOL.md 6.9); a
--                                        Keepalive any (empty, a probe, or padding,
--                                        PROTOCOL.md 6.6)
--   rotorlink.tag                  bytes the 16-byte AES-GCM tag
--   decrypted captures (UDP port 47475, `rotorlink decrypt`, PROTOCOL.md 30.2): the
--   plaintext in place of the ciphertext, and its body's fields:
--   rotorlink.plaintext            bytes the plaintext
--   rotorlink.video.message_id, .total_len, .index, .count, .parity, .kind, .data
--                                        a video fragment (6.2): kind "data" or "parity"
--   rotorlink.segment.sequence, .flags, .data   a reliable segment (6.3)
--   rotorlink.ack.next_expected, .window, .ranges, .start, .len   an Ack (6.4)
--   rotorlink.close.code           u16   a Close (6.5)
--   rotorlink.feedback.largest, .frames, .bytes, .received_at, .ack_delay, .lost,
--     .loss_runs, .unjudged              a Feedback (6.8)
--   rotorlink.repair.first_seq, .count, .parity, .index, .shard
--                                        a Repair (6.9): parity shard `index` of `parity`
--                                        over the `count` storage segments from
--                                        sequence `first_seq` on
--   handshake frames (types 0x01..0x04, PROTOCOL.md 17):
--   rotorlink.hs.message           string Init, Response, Finish or Refusal
--   rotorlink.hs.kind              u8    1 Pair, 2 Session, 3 Resume
--   rotorlink.hs.suite             u8    cipher suite (2: Noise KKpsk0/NNpsk0, OPAQUE)
--   rotorlink.hs.sender_index      u32   the sender's index
--   rotorlink.hs.remote_static     bytes remote static public key (Pair Init)
--   rotorlink.hs.bond_id           bytes bond id (Session Init)
--   rotorlink.hs.ticket            bytes resumption ticket (Resume Init)
--   rotorlink.hs.remote_ephemeral  bytes remote ephemeral public key (Session, Resume Init:
--                                        Noise message 1's `e`)
--   rotorlink.hs.timestamp_sealed  bytes the encrypted timestamp and its tag (Session, Resume
--                                        Init: the rest of Noise message 1, 12 + 16)
--   rotorlink.hs.ke1               bytes OPAQUE KE1 (Pair Init), with
--     rotorlink.hs.ke1.blinded_element, rotorlink.hs.ke1.client_nonce,
--     rotorlink.hs.ke1.client_key_share
--   rotorlink.hs.mac1              bytes anti-DoS MAC (Init)
--   rotorlink.hs.remaining_attempts u32  attempts left (Pair Response, Refusal)
--   rotorlink.hs.aircraft_static   bytes aircraft static public key (Pair Response)
--   rotorlink.hs.ke2               bytes OPAQUE KE2 (Pair Response), with
--     rotorlink.hs.ke2.evaluated_element, rotorlink.hs.ke2.masking_nonce,
--     rotorlink.hs.ke2.masked_response, rotorlink.hs.ke2.server_nonce,
--     rotorlink.hs.ke2.server_key_share, rotorlink.hs.ke2.server_mac
--   rotorlink.hs.aircraft_ephemeral bytes aircraft ephemeral public key (Session, Resume
--                                        Response: Noise message 2's `e`)
--   rotorlink.hs.index_sealed      bytes the aircraft's index encrypted, and the tag (Session,
--                                        Resume Response: the rest of Noise message 2, 4 + 16;
--                                        the index shows in clear as the Finish's receiver)
--   rotorlink.hs.ke3               bytes OPAQUE KE3 (Pair Finish)
--   rotorlink.hs.confirm_r         bytes remote key confirmation (Session, Resume Finish)
--   rotorlink.hs.reason            u8    refusal reason (1 BackOff ... 6 PairingClosed)
--   rotorlink.hs.retry_after       u32   refusal: retry after, in milliseconds
-- Expert infos:
--   rotorlink.malformed            error: a frame a receiver drops (PROTOCOL.md 3.1, 17)
--   rotorlink.unexpected           warning: a body length that cannot be valid once
--                                  decrypted (Ack, Close, Feedback, Repair; a Keepalive
--                                  may have any), or a suite other than 2

local rotorlink = Proto("rotorlink", "rotorlink")

local UDP_PORT = 47474
-- Decrypted captures (`rotorlink decrypt`, PROTOCOL.md 30.2) put their frames on this port,
-- with the plaintext where the ciphertext was: the bodies are decoded there.
local DECRYPTED_PORT = 47475
local VERSION = 2
-- The header (PROTOCOL.md 3): version, type, flags, channel (1 byte each), receiver index
-- (u32), packet number (u32); the payload is the rest of the datagram.
local HEADER_LEN = 12
local TAG_LEN = 16
local MAX_DATAGRAM_LEN = 16384
local MAX_PAYLOAD_LEN = MAX_DATAGRAM_LEN - HEADER_LEN

-- Frame types (PROTOCOL.md 4).
local HANDSHAKE_INIT, HANDSHAKE_RESPONSE, HANDSHAKE_FINISH, COOKIE_REPLY = 0x01, 0x02, 0x03, 0x04
local DATA, ACK, KEEPALIVE, CLOSE, FEEDBACK, REPAIR = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15

local type_names = {
    [HANDSHAKE_INIT] = "HandshakeInit",
    [HANDSHAKE_RESPONSE] = "HandshakeResponse",
    [HANDSHAKE_FINISH] = "HandshakeFinish",
    [COOKIE_REPLY] = "CookieReply",
    [DATA] = "Data",
    [ACK] = "Ack",
    [KEEPALIVE] = "Keepalive",
    [CLOSE] = "Close",
    [FEEDBACK] = "Feedback",
    [REPAIR] = "Repair",
}

-- The handshake message each handshake type carries (PROTOCOL.md 17).
local message_names = {
    [HANDSHAKE_INIT] = "Init",
    [HANDSHAKE_RESPONSE] = "Response",
    [HANDSHAKE_FINISH] = "Finish",
    [COOKIE_REPLY] = "Refusal",
}

local channel_names = {
    [0] = "Session",
    [1] = "Control",
    [2] = "Telemetry",
    [3] = "Video",
    [4] = "Storage",
}

-- The channels each encrypted type allows (PROTOCOL.md 3.1 check 8).
local allowed_channels = {
    [DATA] = { [0] = true, [1] = true, [2] = true, [3] = true, [4] = true },
    [ACK] = { [0] = true, [4] = true },
    [KEEPALIVE] = { [0] = true },
    [CLOSE] = { [0] = true },
    [FEEDBACK] = { [0] = true },
    [REPAIR] = { [0] = true },
}

local kind_names = { [1] = "Pair", [2] = "Session", [3] = "Resume" }

local reason_names = {
    [1] = "BackOff",
    [2] = "LockedOut",
    [3] = "UnknownBond",
    [4] = "UnknownTicket",
    [5] = "Busy",
    [6] = "PairingClosed",
}

-- The plaintext length of encrypted bodies of fixed size (PROTOCOL.md 6.5, 6.8). A
-- Keepalive's plaintext is empty, a probe's byte or padding of any length (PROTOCOL.md 6.6,
-- 34.5, 34.6).
local body_lengths = { [CLOSE] = 2, [FEEDBACK] = 50 }

-- An Ack body (PROTOCOL.md 6.4): next expected (4), window (2), n (1), then n SACK ranges
-- of 6 bytes, at most 32.
local ACK_MIN_LEN, ACK_RANGE_LEN, MAX_SACK_RANGES = 7, 6, 32

-- A Repair body (PROTOCOL.md 6.9): first seq (4), count (2), parity (2), index (2), then
-- the shard: the rest, non-empty and of even length. A block covers 1 to 4096 segments.
local REPAIR_HEADER_LEN, MAX_REPAIR_SEGMENTS = 10, 4096

-- Why a plaintext of `clen` bytes cannot be a valid body of type `ftype`, or nil if it can.
local function body_length_problem(ftype, clen)
    if ftype == ACK then
        local n = (clen - ACK_MIN_LEN) / ACK_RANGE_LEN
        if clen < ACK_MIN_LEN or n ~= math.floor(n) or n > MAX_SACK_RANGES then
            return string.format(
                "an Ack plaintext is 7 + 6n bytes with n <= %d (7 to %d), this one %d",
                MAX_SACK_RANGES, ACK_MIN_LEN + MAX_SACK_RANGES * ACK_RANGE_LEN, clen)
        end
        return nil
    end
    if ftype == REPAIR then
        local shard = clen - REPAIR_HEADER_LEN
        if shard < 2 or shard % 2 ~= 0 then
            return string.format(
                "a Repair plaintext is a %d-byte header and a non-empty shard of even length"
                .. " (12, 14, ... bytes), this one %d", REPAIR_HEADER_LEN, clen)
        end
        return nil
    end
    local want = body_lengths[ftype]
    if want and clen ~= want then
        return string.format("a %s plaintext is %d bytes, this one %d",
            type_names[ftype], want, clen)
    end
    return nil
end

local function is_handshake(ftype)
    return ftype >= HANDSHAKE_INIT and ftype <= COOKIE_REPLY
end

-- The encrypted types this revision defines (PROTOCOL.md 4: every known type from 0x10 on).
local function is_encrypted(ftype)
    return ftype >= DATA and ftype <= REPAIR
end

-- The key phase bit (0x01) of a flags byte.
local function key_phase_of(flags)
    return flags % 2
end

local f = rotorlink.fields
f.version = ProtoField.uint8("rotorlink.version", "Version", base.DEC)
f.type = ProtoField.uint8("rotorlink.type", "Type", base.HEX, type_names)
f.flags = ProtoField.uint8("rotorlink.flags", "Flags", base.HEX)
f.key_phase = ProtoField.uint8("rotorlink.flags.key_phase", "Key phase", base.DEC, nil, 0x01)
f.reserved = ProtoField.uint8("rotorlink.flags.reserved", "Reserved", base.HEX, nil, 0xfe)
f.channel = ProtoField.uint8("rotorlink.channel", "Channel", base.DEC, channel_names)
f.receiver_index = ProtoField.uint32("rotorlink.receiver_index", "Receiver index", base.HEX)
f.packet_number = ProtoField.uint32("rotorlink.packet_number", "Packet number", base.DEC)
f.payload = ProtoField.bytes("rotorlink.payload", "Payload")
f.ciphertext = ProtoField.bytes("rotorlink.ciphertext", "Ciphertext")
f.ciphertext_len = ProtoField.uint16("rotorlink.ciphertext_len", "Ciphertext length", base.DEC)
f.tag = ProtoField.bytes("rotorlink.tag", "Tag")

-- Bodies of decrypted frames (port 47475; PROTOCOL.md 6).
f.plaintext = ProtoField.bytes("rotorlink.plaintext", "Plaintext (decrypted capture)")
f.video_message_id = ProtoField.uint32("rotorlink.video.message_id", "Message id", base.DEC)
f.video_total_len = ProtoField.uint32("rotorlink.video.total_len", "Total length", base.DEC)
f.video_index = ProtoField.uint16("rotorlink.video.index", "Fragment index", base.DEC)
f.video_count = ProtoField.uint16("rotorlink.video.count", "Data fragments", base.DEC)
f.video_parity = ProtoField.uint16("rotorlink.video.parity", "Parity fragments", base.DEC)
f.video_kind = ProtoField.string("rotorlink.video.kind", "Fragment kind")
f.video_data = ProtoField.bytes("rotorlink.video.data", "Fragment data (or parity shard)")
f.seg_sequence = ProtoField.uint32("rotorlink.segment.sequence", "Sequence", base.DEC)
f.seg_flags = ProtoField.uint8("rotorlink.segment.flags", "Segment flags", base.HEX)
f.seg_data = ProtoField.bytes("rotorlink.segment.data", "Segment data")
f.ack_next = ProtoField.uint32("rotorlink.ack.next_expected", "Next expected", base.DEC)
f.ack_window = ProtoField.uint16("rotorlink.ack.window", "Window", base.DEC)
f.ack_ranges = ProtoField.uint8("rotorlink.ack.ranges", "SACK ranges", base.DEC)
f.ack_start = ProtoField.uint32("rotorlink.ack.start", "Range start", base.DEC)
f.ack_len = ProtoField.uint16("rotorlink.ack.len", "Range length", base.DEC)
f.close_code = ProtoField.uint16("rotorlink.close.code", "Close code", base.HEX)
f.fb_largest = ProtoField.uint64("rotorlink.feedback.largest", "Largest counter", base.DEC)
f.fb_frames = ProtoField.uint64("rotorlink.feedback.frames", "Frames received", base.DEC)
f.fb_bytes = ProtoField.uint64("rotorlink.feedback.bytes", "Bytes received", base.DEC)
f.fb_received_at = ProtoField.uint32("rotorlink.feedback.received_at", "Received at (us)", base.DEC)
f.fb_ack_delay = ProtoField.uint32("rotorlink.feedback.ack_delay", "Ack delay (us)", base.DEC)
f.fb_lost = ProtoField.uint64("rotorlink.feedback.lost", "Counters lost", base.DEC)
f.fb_loss_runs = ProtoField.uint64("rotorlink.feedback.loss_runs", "Loss runs", base.DEC)
f.fb_unjudged = ProtoField.uint16("rotorlink.feedback.unjudged", "Counters not judged yet", base.DEC)
f.repair_first_seq = ProtoField.uint32("rotorlink.repair.first_seq", "First sequence", base.DEC)
f.repair_count = ProtoField.uint16("rotorlink.repair.count", "Segments", base.DEC)
f.repair_parity = ProtoField.uint16("rotorlink.repair.parity", "Parity shards", base.DEC)
f.repair_index = ProtoField.uint16("rotorlink.repair.index", "Parity shard index", base.DEC)
f.repair_shard = ProtoField.bytes("rotorlink.repair.shard", "Parity shard")

f.hs_message = ProtoField.string("rotorlink.hs.message", "Handshake message")
f.hs_kind = ProtoField.uint8("rotorlink.hs.kind", "Kind", base.DEC, kind_names)
f.hs_suite = ProtoField.uint8("rotorlink.hs.suite", "Suite", base.DEC)
f.hs_sender_index = ProtoField.uint32("rotorlink.hs.sender_index", "Sender index", base.HEX)
f.hs_remote_static =
    ProtoField.bytes("rotorlink.hs.remote_static", "Remote static public key")
f.hs_bond_id = ProtoField.bytes("rotorlink.hs.bond_id", "Bond id")
f.hs_ticket = ProtoField.bytes("rotorlink.hs.ticket", "Resumption ticket")
f.hs_remote_ephemeral =
    ProtoField.bytes("rotorlink.hs.remote_ephemeral", "Remote ephemeral public key")
f.hs_ke1 = ProtoField.bytes("rotorlink.hs.ke1", "OPAQUE KE1")
f.hs_ke1_blinded = ProtoField.bytes("rotorlink.hs.ke1.blinded_element", "Blinded element")
f.hs_ke1_nonce = ProtoField.bytes("rotorlink.hs.ke1.client_nonce", "Client nonce")
f.hs_ke1_share = ProtoField.bytes("rotorlink.hs.ke1.client_key_share", "Client key share")
f.hs_mac1 = ProtoField.bytes("rotorlink.hs.mac1", "mac1")
f.hs_remaining =
    ProtoField.uint32("rotorlink.hs.remaining_attempts", "Remaining attempts", base.DEC)
f.hs_aircraft_static =
    ProtoField.bytes("rotorlink.hs.aircraft_static", "Aircraft static public key")
f.hs_ke2 = ProtoField.bytes("rotorlink.hs.ke2", "OPAQUE KE2")
f.hs_ke2_evaluated = ProtoField.bytes("rotorlink.hs.ke2.evaluated_element", "Evaluated element")
f.hs_ke2_masking_nonce = ProtoField.bytes("rotorlink.hs.ke2.masking_nonce", "Masking nonce")
f.hs_ke2_masked = ProtoField.bytes("rotorlink.hs.ke2.masked_response", "Masked response")
f.hs_ke2_server_nonce = ProtoField.bytes("rotorlink.hs.ke2.server_nonce", "Server nonce")
f.hs_ke2_share = ProtoField.bytes("rotorlink.hs.ke2.server_key_share", "Server key share")
f.hs_ke2_mac = ProtoField.bytes("rotorlink.hs.ke2.server_mac", "Server MAC")
f.hs_aircraft_ephemeral =
    ProtoField.bytes("rotorlink.hs.aircraft_ephemeral", "Aircraft ephemeral public key")
f.hs_timestamp_sealed =
    ProtoField.bytes("rotorlink.hs.timestamp_sealed", "Encrypted timestamp and tag (Noise)")
f.hs_index_sealed =
    ProtoField.bytes("rotorlink.hs.index_sealed", "Encrypted aircraft index and tag (Noise)")
f.hs_ke3 = ProtoField.bytes("rotorlink.hs.ke3", "OPAQUE KE3")
f.hs_confirm_r = ProtoField.bytes("rotorlink.hs.confirm_r", "Remote confirmation (confirm_r)")
f.hs_reason = ProtoField.uint8("rotorlink.hs.reason", "Reason", base.DEC, reason_names)
f.hs_retry_after = ProtoField.uint32("rotorlink.hs.retry_after", "Retry after (ms)", base.DEC)

local ef_malformed = ProtoExpert.new(
    "rotorlink.malformed", "Malformed rotorlink frame", expert.group.MALFORMED, expert.severity.ERROR)
local ef_unexpected = ProtoExpert.new(
    "rotorlink.unexpected", "Unexpected rotorlink field value", expert.group.PROTOCOL,
    expert.severity.WARN)
rotorlink.experts = { ef_malformed, ef_unexpected }

rotorlink.prefs.udp_port = Pref.uint(
    "UDP port", UDP_PORT, "The UDP port rotorlink is decoded on (0: none; the heuristic "
    .. "dissector still finds rotorlink on any port)")

-- The layouts of the handshake messages, by type and kind: {field, size} in order.
local KE1 = { { f.hs_ke1_blinded, 32 }, { f.hs_ke1_nonce, 32 }, { f.hs_ke1_share, 32 } }
local KE2 = {
    { f.hs_ke2_evaluated, 32 }, { f.hs_ke2_masking_nonce, 32 }, { f.hs_ke2_masked, 128 },
    { f.hs_ke2_server_nonce, 32 }, { f.hs_ke2_share, 32 }, { f.hs_ke2_mac, 64 },
}
local layouts = {
    [HANDSHAKE_INIT] = {
        [1] = { { f.hs_kind, 1 }, { f.hs_suite, 1 }, { f.hs_sender_index, 4 },
                { f.hs_remote_static, 32 }, { f.hs_ke1, 96, KE1 }, { f.hs_mac1, 16 } },
        [2] = { { f.hs_kind, 1 }, { f.hs_suite, 1 }, { f.hs_sender_index, 4 },
                { f.hs_bond_id, 8 }, { f.hs_remote_ephemeral, 32 },
                { f.hs_timestamp_sealed, 28 }, { f.hs_mac1, 16 } },
        [3] = { { f.hs_kind, 1 }, { f.hs_suite, 1 }, { f.hs_sender_index, 4 },
                { f.hs_ticket, 16 }, { f.hs_remote_ephemeral, 32 },
                { f.hs_timestamp_sealed, 28 }, { f.hs_mac1, 16 } },
    },
    [HANDSHAKE_RESPONSE] = {
        [1] = { { f.hs_kind, 1 }, { f.hs_sender_index, 4 }, { f.hs_remaining, 4 },
                { f.hs_aircraft_static, 32 }, { f.hs_ke2, 320, KE2 } },
        [2] = { { f.hs_kind, 1 }, { f.hs_aircraft_ephemeral, 32 }, { f.hs_index_sealed, 20 } },
    },
    [HANDSHAKE_FINISH] = {
        [1] = { { f.hs_kind, 1 }, { f.hs_ke3, 64 } },
        [2] = { { f.hs_kind, 1 }, { f.hs_confirm_r, 16 } },
    },
}
layouts[HANDSHAKE_RESPONSE][3] = layouts[HANDSHAKE_RESPONSE][2]
layouts[HANDSHAKE_FINISH][3] = layouts[HANDSHAKE_FINISH][2]
local REFUSAL = { { f.hs_reason, 1 }, { f.hs_remaining, 4 }, { f.hs_retry_after, 4 } }

-- The malformations found in the frame being dissected (their PROTOCOL.md error names),
-- for the Info column.
local problems = {}

-- Add a malformed-frame expert info to `item` and note `code` for the Info column.
local function malformed(item, code, text)
    item:add_proto_expert_info(ef_malformed, text .. " (" .. code .. ")")
    problems[#problems + 1] = code
end

local function layout_len(layout)
    local n = 0
    for _, item in ipairs(layout) do
        n = n + item[2]
    end
    return n
end

-- The layout of a handshake payload whose first byte is `first`, or nil for a kind that
-- does not exist.
local function layout_of(ftype, first)
    if ftype == COOKIE_REPLY then
        return REFUSAL
    end
    return layouts[ftype][first]
end

-- Add the fields of `layout` found in `range` to `tree`, as far as the bytes go.
-- Returns the number of bytes the layout wants.
local function add_layout(range, tree, layout)
    local off, len = 0, range:len()
    for _, item in ipairs(layout) do
        local field, size, sub = item[1], item[2], item[3]
        if off + size > len then
            if off < len then
                tree:add(field, range(off))
            end
            off = off + size
        else
            local ti = tree:add(field, range(off, size))
            if sub then
                add_layout(range(off, size), ti, sub)
            end
            off = off + size
        end
    end
    return off
end

-- Decode a handshake payload. Returns the Info column text after the type name.
local function dissect_handshake(ftype, payload, tree)
    local len = payload:len()
    local message = message_names[ftype]
    local st = tree:add(rotorlink, payload, message)
    st:add(f.hs_message, message):set_generated()
    if len == 0 then
        malformed(st, "PayloadTooShort", message .. ": empty payload")
        return ""
    end
    local first = payload(0, 1):uint()
    local layout = layout_of(ftype, first)
    if not layout then
        st:add(f.hs_kind, payload(0, 1))
        malformed(st, "InvalidField", string.format("unknown handshake kind %d", first))
        return string.format(" kind=%d", first)
    end
    local want = add_layout(payload, st, layout)
    local info
    if ftype == COOKIE_REPLY then
        local reason = reason_names[first]
        if not reason then
            malformed(st, "InvalidField", string.format("unknown refusal reason %d", first))
            reason = tostring(first)
        end
        st:set_text("Refusal: " .. reason)
        info = " (Refusal) reason=" .. reason
        if len >= want then
            info = info .. string.format(" attempts=%d retry=%dms",
                payload(1, 4):uint(), payload(5, 4):uint())
        end
    else
        local kind = kind_names[first]
        st:set_text(string.format("%s (%s)", message, kind))
        info = " kind=" .. kind
        if ftype == HANDSHAKE_INIT and len >= 6 then
            info = info .. string.format(" sender=0x%08x", payload(2, 4):uint())
            local suite = payload(1, 1):uint()
            if suite ~= 2 then
                st:add_proto_expert_info(ef_unexpected, string.format(
                    "suite %d: only suite 2 is defined; an aircraft drops this Init", suite))
            end
        elseif ftype == HANDSHAKE_RESPONSE and first == 1 and len >= 5 then
            -- Only a pairing Response has its sender index in the clear (a keyed one carries
            -- it inside Noise message 2).
            info = info .. string.format(" sender=0x%08x", payload(1, 4):uint())
        end
    end
    if len < want then
        malformed(st, "PayloadTooShort", string.format(
            "this message is %d bytes, the payload only %d", want, len))
    elseif len > want then
        malformed(st, "TrailingBytes", string.format(
            "this message is %d bytes, the payload %d", want, len))
    end
    return info
end

local FRAGMENT_HEADER = {
    { f.video_message_id, 4 }, { f.video_total_len, 4 }, { f.video_index, 2 },
    { f.video_count, 2 }, { f.video_parity, 2 },
}
local FEEDBACK_BODY = {
    { f.fb_largest, 8 }, { f.fb_frames, 8 }, { f.fb_bytes, 8 }, { f.fb_received_at, 4 },
    { f.fb_ack_delay, 4 }, { f.fb_lost, 8 }, { f.fb_loss_runs, 8 }, { f.fb_unjudged, 2 },
}
local REPAIR_HEADER = {
    { f.repair_first_seq, 4 }, { f.repair_count, 2 }, { f.repair_parity, 2 },
    { f.repair_index, 2 },
}

-- Decode the plaintext body `body` of a decrypted frame (PROTOCOL.md 6). Returns Info text.
local function dissect_plaintext(ftype, channel, body, tree)
    local len = body:len()
    local pt = tree:add(f.plaintext, body)
    if ftype == DATA and channel == 3 then
        if len < 14 then
            malformed(pt, "PayloadTooShort", "a video fragment has a 14-byte header")
            return ""
        end
        add_layout(body(0, 14), pt, FRAGMENT_HEADER)
        local id, index = body(0, 4):uint(), body(8, 2):uint()
        local count, parity = body(10, 2):uint(), body(12, 2):uint()
        local kind = index < count and "data" or "parity"
        pt:add(f.video_kind, kind):set_generated()
        if len > 14 then
            pt:add(f.video_data, body(14))
        end
        return string.format(" msg=%d %s %d of %d+%d", id, kind,
            index < count and index or index - count, count, parity)
    elseif ftype == DATA and (channel == 0 or channel == 4) then
        if len < 5 then
            malformed(pt, "PayloadTooShort", "a reliable segment has a 5-byte header")
            return ""
        end
        pt:add(f.seg_sequence, body(0, 4))
        pt:add(f.seg_flags, body(4, 1))
        if len > 5 then
            pt:add(f.seg_data, body(5))
        end
        return string.format(" seq=%d", body(0, 4):uint())
    elseif ftype == ACK and len >= ACK_MIN_LEN then
        pt:add(f.ack_next, body(0, 4))
        pt:add(f.ack_window, body(4, 2))
        pt:add(f.ack_ranges, body(6, 1))
        local off = ACK_MIN_LEN
        while off + ACK_RANGE_LEN <= len do
            pt:add(f.ack_start, body(off, 4))
            pt:add(f.ack_len, body(off + 4, 2))
            off = off + ACK_RANGE_LEN
        end
        return string.format(" next=%d", body(0, 4):uint())
    elseif ftype == CLOSE and len == 2 then
        pt:add(f.close_code, body(0, 2))
        return string.format(" code=0x%04x", body(0, 2):uint())
    elseif ftype == FEEDBACK and len == 50 then
        add_layout(body, pt, FEEDBACK_BODY)
        return string.format(" lost=%s runs=%s", tostring(body(32, 8):uint64()),
            tostring(body(40, 8):uint64()))
    elseif ftype == REPAIR then
        -- The shard's length (non-empty, even) is body_length_problem's to check.
        if len < REPAIR_HEADER_LEN then
            malformed(pt, "PayloadTooShort", "a Repair has a 10-byte header")
            return ""
        end
        add_layout(body(0, REPAIR_HEADER_LEN), pt, REPAIR_HEADER)
        local first, count = body(0, 4):uint(), body(4, 2):uint()
        local parity, index = body(6, 2):uint(), body(8, 2):uint()
        if count == 0 or count > MAX_REPAIR_SEGMENTS then
            malformed(pt, "InvalidField", string.format(
                "a Repair block has 1 to %d segments, this one %d", MAX_REPAIR_SEGMENTS, count))
        end
        if parity == 0 then
            malformed(pt, "InvalidField", "a Repair block with no parity shard")
        elseif index >= parity then
            malformed(pt, "InvalidField", string.format(
                "parity shard %d of a Repair block of %d", index, parity))
        end
        if len > REPAIR_HEADER_LEN then
            pt:add(f.repair_shard, body(REPAIR_HEADER_LEN))
        end
        return string.format(" seq=%d+%d shard %d/%d", first, count, index, parity)
    elseif ftype == KEEPALIVE then
        -- One byte 0x01: a probe, answered by a feedback frame of its own (PROTOCOL.md
        -- 6.6, 34.6); empty, a keepalive; anything else, padding.
        if len == 1 and body(0, 1):uint() == 1 then
            return " probe"
        elseif len > 0 then
            return " padding"
        end
    end
    return ""
end

-- Decode the encrypted part of a frame, whose payload (`plen` bytes, item `pi`) is the
-- ciphertext, then the tag. Returns the Info column text after the key phase.
-- `decrypted`: the frame comes from a decrypted capture, its body is plaintext (in place of
-- the ciphertext, the tag still last).
local function dissect_encrypted(ftype, tvb, plen, top, pi, channel, decrypted)
    if plen < TAG_LEN then
        malformed(pi, "PayloadTooShort", string.format(
            "encrypted payload of %d bytes: shorter than the %d-byte tag", plen, TAG_LEN))
        return ""
    end
    local clen = plen - TAG_LEN
    local ct = top:add(f.ciphertext_len, clen)
    ct:set_generated()
    local body_info = ""
    if decrypted then
        if clen > 0 then
            body_info = dissect_plaintext(ftype, channel, tvb(HEADER_LEN, clen), top)
        end
    elseif clen > 0 then
        top:add(f.ciphertext, tvb(HEADER_LEN, clen))
    end
    top:add(f.tag, tvb(HEADER_LEN + clen, TAG_LEN))
    local problem = body_length_problem(ftype, clen)
    if problem then
        ct:add_proto_expert_info(ef_unexpected,
            problem .. ": the receiver drops it once decrypted")
    end
    local info = " len=" .. clen
    if ftype == ACK and not problem then
        -- The number of SACK ranges follows from the length alone.
        local ranges = math.floor((clen - ACK_MIN_LEN) / ACK_RANGE_LEN)
        info = info .. string.format(" ranges=%d", ranges)
    end
    return info .. body_info
end

local function dissect(tvb, pinfo, tree)
    problems = {}
    local len = tvb:len()
    pinfo.cols.protocol = "rotorlink"
    local top = tree:add(rotorlink, tvb(), "rotorlink")
    if len < HEADER_LEN then
        -- Decode what there is of the header.
        local fields = { { f.version, 1 }, { f.type, 1 }, { f.flags, 1 }, { f.channel, 1 },
                         { f.receiver_index, 4 }, { f.packet_number, 4 } }
        local off = 0
        for _, item in ipairs(fields) do
            if off + item[2] > len then
                break
            end
            top:add(item[1], tvb(off, item[2]))
            off = off + item[2]
        end
        malformed(top, "Truncated", string.format(
            "%d bytes: shorter than the %d-byte header", len, HEADER_LEN))
        top:set_text(string.format("rotorlink, truncated frame (%d bytes)", len))
        pinfo.cols.info = string.format("Truncated frame (%d bytes) [Malformed: Truncated]", len)
        return
    end

    local version = tvb(0, 1):uint()
    local ftype = tvb(1, 1):uint()
    local flags = tvb(2, 1):uint()
    local channel = tvb(3, 1):uint()
    local receiver = tvb(4, 4):uint()
    local pn = tvb(8, 4):uint()
    -- No length field: the payload is the rest of the datagram.
    local plen = len - HEADER_LEN
    local known = type_names[ftype] ~= nil
    local tname = type_names[ftype] or string.format("Unknown(0x%02x)", ftype)
    local has_channel = ftype == DATA or ftype == ACK

    -- Header fields, each checked as PROTOCOL.md 3.1 does.
    local vi = top:add(f.version, tvb(0, 1))
    if version ~= VERSION then
        malformed(vi, "BadVersion", string.format("version %d: only %d is defined", version,
            VERSION))
    end
    local ti = top:add(f.type, tvb(1, 1))
    if not known then
        malformed(ti, "UnknownType", string.format("unknown frame type 0x%02x", ftype))
    end
    local fi = top:add(f.flags, tvb(2, 1))
    fi:add(f.key_phase, tvb(2, 1))
    fi:add(f.reserved, tvb(2, 1))
    -- Encrypted types allow the key phase bit, handshake types no bit. (Plain arithmetic,
    -- not bit32: it works with the Lua of every Wireshark version.)
    local reserved = is_encrypted(ftype) and flags - key_phase_of(flags) or flags
    if known and reserved ~= 0 then
        malformed(fi, "ReservedFlags", string.format(
            "flag bits 0x%02x are reserved on %s", reserved, tname))
    end
    local ci = top:add(f.channel, tvb(3, 1))
    if not has_channel then
        ci:set_text(string.format("Channel: none (%d)", channel))
    end
    if known then
        local ok = (allowed_channels[ftype] and allowed_channels[ftype][channel])
            or (is_handshake(ftype) and channel == 0)
        if not ok then
            malformed(ci, "BadChannel", string.format(
                "channel %d is not allowed on %s", channel, tname))
        end
    end
    top:add(f.receiver_index, tvb(4, 4))
    local ni = top:add(f.packet_number, tvb(8, 4))
    if is_handshake(ftype) and pn ~= 0 then
        malformed(ni, "InvalidField", "a handshake frame with a non-zero packet number")
    end

    -- The payload: the rest of the datagram.
    local payload = tvb(HEADER_LEN, plen)
    local pi = top
    if plen > 0 then
        pi = top:add(f.payload, payload)
    end
    if plen > MAX_PAYLOAD_LEN then
        malformed(pi, "Oversize", string.format(
            "a datagram of %d bytes (payload %d) exceeds %d (payload %d)", len, plen,
            MAX_DATAGRAM_LEN, MAX_PAYLOAD_LEN))
    end

    local info = tname
    if is_handshake(ftype) then
        info = info .. dissect_handshake(ftype, payload, top)
        if ftype ~= HANDSHAKE_INIT then
            info = info .. string.format(" receiver=0x%08x", receiver)
        end
    elseif is_encrypted(ftype) then
        if has_channel then
            info = info .. " ch=" .. (channel_names[channel] or tostring(channel))
        end
        info = info .. string.format(" pn=%d phase=%d", pn, key_phase_of(flags))
        local decrypted = pinfo.src_port == DECRYPTED_PORT or pinfo.dst_port == DECRYPTED_PORT
        info = info .. dissect_encrypted(ftype, tvb, plen, top, pi, channel, decrypted)
    end
    top:set_text("rotorlink, " .. info)
    if #problems > 0 then
        info = info .. " [Malformed: " .. table.concat(problems, ", ") .. "]"
    end
    pinfo.cols.info = info
end

function rotorlink.dissector(tvb, pinfo, tree)
    local ok, err = pcall(dissect, tvb, pinfo, tree)
    if not ok then
        tree:add_proto_expert_info(ef_malformed, "rotorlink dissector error: " .. tostring(err))
    end
    return tvb:len()
end

-- The heuristic: a well-formed frame, nothing less.
local function looks_like_rotorlink(tvb)
    local len = tvb:len()
    if len < HEADER_LEN or len > MAX_DATAGRAM_LEN or tvb(0, 1):uint() ~= VERSION then
        return false
    end
    local ftype = tvb(1, 1):uint()
    local flags = tvb(2, 1):uint()
    local channel = tvb(3, 1):uint()
    local plen = len - HEADER_LEN
    if is_encrypted(ftype) then
        return flags <= 1 and allowed_channels[ftype][channel] == true
            and plen >= TAG_LEN
    end
    if not is_handshake(ftype) or flags ~= 0 or channel ~= 0 or plen == 0
        or tvb(8, 4):uint() ~= 0 then
        return false
    end
    local first = tvb(HEADER_LEN, 1):uint()
    if ftype == COOKIE_REPLY and not reason_names[first] then
        return false
    end
    local layout = layout_of(ftype, first)
    return layout ~= nil and layout_len(layout) == plen
end

local function heuristic(tvb, pinfo, tree)
    local ok, yes = pcall(looks_like_rotorlink, tvb)
    if not (ok and yes) then
        return false
    end
    rotorlink.dissector(tvb, pinfo, tree)
    return true
end

rotorlink:register_heuristic("udp", heuristic)

-- The port: UDP_PORT, or the preference.
local udp_table = DissectorTable.get("udp.port")
local registered_port = 0

local function register_port(port)
    if registered_port ~= 0 then
        udp_table:remove(registered_port, rotorlink)
    end
    registered_port = port
    if port ~= 0 then
        udp_table:add(port, rotorlink)
    end
end

function rotorlink.prefs_changed()
    if rotorlink.prefs.udp_port ~= registered_port then
        register_port(rotorlink.prefs.udp_port)
    end
end

register_port(UDP_PORT)
-- Decrypted captures: always on their own port.
udp_table:add(DECRYPTED_PORT, rotorlink)
