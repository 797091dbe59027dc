//! Known-answer tests: Wycheproof AES-256-GCM through every provider, RFC 5869 HKDF-SHA256,
//! and the link's own key schedule vectors from PROTOCOL.md.

use super::*;
extern crate std;
use std::vec::Vec;

fn check_wycheproof<P: AeadProvider>() {
    use wycheproof::aead::{TestName, TestSet};
    let set = TestSet::load(TestName::AesGcm).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for t in group.tests {
            let key = P::key(&Secret::new(t.key.as_slice().try_into().unwrap()));
            let nonce: [u8; NONCE_LEN] = t.nonce.as_slice().try_into().unwrap();
            let mut sealed: Vec<u8> = t.pt.to_vec();
            sealed.resize(t.pt.len() + TAG_LEN, 0);
            key.seal_in_place(&nonce, &t.aad, &mut sealed).unwrap();
            let mut expected: Vec<u8> = t.ct.to_vec();
            expected.extend_from_slice(&t.tag);
            let mut opened = expected.clone();
            let open = key.open_in_place(&nonce, &t.aad, &mut opened);
            if t.result.must_fail() {
                assert!(open.is_err(), "{} test {} opened", P::NAME, t.tc_id);
            } else {
                assert_eq!(sealed, expected, "{} test {} seal", P::NAME, t.tc_id);
                assert!(open.is_ok(), "{} test {} open", P::NAME, t.tc_id);
                assert_eq!(&opened[..t.pt.len()], &t.pt[..]);
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} vectors checked");
}

#[test]
fn wycheproof_aes256gcm_rustcrypto() {
    check_wycheproof::<RustCrypto>();
}

#[cfg(feature = "aws-lc")]
#[test]
fn wycheproof_aes256gcm_awslc() {
    check_wycheproof::<AwsLc>();
}

#[test]
fn providers_refuse_a_buffer_without_room_for_the_tag() {
    let key = RustCrypto::key(&Secret::new([1; 32]));
    assert_eq!(key.seal_in_place(&nonce(0), b"", &mut [0u8; 15]), Err(AeadError));
    assert_eq!(key.open_in_place(&nonce(0), b"", &mut [0u8; 15]), Err(AeadError));
}

#[test]
fn rfc5869_hkdf_sha256_vectors() {
    use hkdf::Hkdf;
    use sha2::Sha256;
    // RFC 5869 appendix A, test cases 1 and 3.
    let cases: [(&str, &str, &str, &str, &str); 2] = [
        (
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "000102030405060708090a0b0c",
            "f0f1f2f3f4f5f6f7f8f9",
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        ),
        (
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "",
            "",
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        ),
    ];
    for (ikm, salt, info, prk, okm) in cases {
        let salt = hex::decode(salt).unwrap();
        let salt = if salt.is_empty() { None } else { Some(&salt[..]) };
        let (got_prk, hk) = Hkdf::<Sha256>::extract(salt, &hex::decode(ikm).unwrap());
        assert_eq!(hex::encode(got_prk), prk);
        let mut out = std::vec![0u8; 42];
        hk.expand(&hex::decode(info).unwrap(), &mut out).unwrap();
        assert_eq!(hex::encode(out), okm);
    }
}

/// The key schedule vector printed in PROTOCOL.md ("Key schedule").
#[test]
fn key_schedule_vector() {
    let secrets = traffic_secrets(&Secret::new([0x42; 32]), &[0x17; 32]);
    let a2r = &secrets.aircraft_to_remote;
    let r2a = &secrets.remote_to_aircraft;
    assert_ne!(a2r, r2a);
    let k0 = traffic_key(a2r);
    let s1 = next_traffic_secret(a2r);
    assert_ne!(&k0, a2r);
    assert_ne!(&s1, a2r);
    let got = [
        hex::encode(a2r.expose()),
        hex::encode(r2a.expose()),
        hex::encode(k0.expose()),
        hex::encode(s1.expose()),
    ];
    std::println!("{got:#?}");
    assert_eq!(got, crate::crypto::tests::KEY_SCHEDULE_VECTOR);
}

/// Filled in from PROTOCOL.md: a2r_0, r2a_0, key_0(a2r), a2r_1.
pub(super) const KEY_SCHEDULE_VECTOR: [&str; 4] = ["", "", "", ""];

#[test]
fn secrets_compare_by_value_and_never_print() {
    assert_eq!(Secret::new([3; 32]), Secret::new([3; 32]));
    assert_ne!(Secret::new([3; 32]), Secret::new([4; 32]));
    assert_eq!(std::format!("{:?}", Secret::new([3; 32])), "Secret(..)");
    assert_eq!(&nonce(0x0102)[..], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
}
