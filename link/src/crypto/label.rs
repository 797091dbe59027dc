//! Every label of the key schedule, one named constant each (PROTOCOL.md lists the same
//! strings). A label separates one derivation from every other, so no two are equal.

/// HKDF-Expand label of the aircraft-to-remote traffic secret.
pub const TRAFFIC_A2R: &[u8] = b"rotorlink v1 traffic a2r";
/// HKDF-Expand label of the remote-to-aircraft traffic secret.
pub const TRAFFIC_R2A: &[u8] = b"rotorlink v1 traffic r2a";
/// HKDF-Expand label of a phase's AES-256-GCM key from its traffic secret.
pub const KEY: &[u8] = b"rotorlink v1 key";
/// HKDF-Expand label of the next traffic secret after a key update.
pub const KEY_UPDATE: &[u8] = b"rotorlink v1 key update";
/// SHA-256 prefix of the anti-DoS `mac1` key.
pub const MAC1: &[u8] = b"rotorlink v1 mac1";
/// SHA-256 prefix of a bond key.
pub const BOND: &[u8] = b"rotorlink v1 bond";
/// Transcript label of the bonded session handshake.
pub const SESSION: &[u8] = b"rotorlink v1 session";
/// Transcript label of the resume handshake.
pub const RESUME: &[u8] = b"rotorlink v1 resume";
/// Noise prologue prefix of the session handshake.
pub const SESSION_PROLOGUE: &[u8] = b"rotorlink v1 session prologue";
/// Noise prologue prefix of the resume handshake.
pub const RESUME_PROLOGUE: &[u8] = b"rotorlink v1 resume prologue";
/// HKDF-Expand label of the remote's key confirmation.
pub const REMOTE_CONFIRM: &[u8] = b"rotorlink v1 remote confirm";
/// HKDF-Expand label of a keyed handshake's shared secret.
pub const HANDSHAKE_SECRET: &[u8] = b"rotorlink v1 handshake secret";
/// HKDF-Expand label of the resumption ticket.
pub const TICKET: &[u8] = b"rotorlink v1 ticket";
/// HKDF-Expand label of the resumption secret.
pub const RESUMPTION: &[u8] = b"rotorlink v1 resumption";
/// Transcript label of a pairing's OPAQUE context.
pub const PAIR: &[u8] = b"rotorlink v1 pair";
/// HKDF-Extract salt that reduces OPAQUE's 64-byte session key to the session secret.
pub const PAKE_SESSION: &[u8] = b"rotorlink v1 pake session";
/// Transcript label of a storage unlock's OPAQUE context.
pub const UNLOCK: &[u8] = b"rotorlink v1 unlock";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_labels_are_equal() {
        let all = [
            TRAFFIC_A2R,
            TRAFFIC_R2A,
            KEY,
            KEY_UPDATE,
            MAC1,
            BOND,
            SESSION,
            RESUME,
            SESSION_PROLOGUE,
            RESUME_PROLOGUE,
            REMOTE_CONFIRM,
            HANDSHAKE_SECRET,
            TICKET,
            RESUMPTION,
            PAIR,
            PAKE_SESSION,
            UNLOCK,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
