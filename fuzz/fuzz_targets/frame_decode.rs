//! Arbitrary bytes into the frame parser: it never panics, and whatever parses emits back to
//! the same header bytes and re-parses identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rotorlink::wire::body::{AckBody, CloseBody, FragmentHeader, SegmentHeader};
use rotorlink::wire::{Frame, Header, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::new_checked(data) {
        if let Ok(header) = Header::parse(&frame) {
            let mut out = data.to_vec();
            header.emit(&mut out).expect("a parsed header fits its own frame");
            assert_eq!(&out[..HEADER_LEN], &data[..HEADER_LEN]);
            let again = Header::parse(&Frame::new_checked(&out[..]).expect("re-check"));
            assert_eq!(again, Ok(header));
        }
    }
    let _ = FragmentHeader::parse(data);
    let _ = SegmentHeader::parse(data);
    let _ = AckBody::parse(data);
    let _ = CloseBody::parse(data);
});
