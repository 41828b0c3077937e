//! Decoding arbitrary bytes as a journal record never panics, and what decodes re-encodes to
//! an equal record. The input is tried twice: as raw bytes (the framing checks) and as the
//! payload behind a valid length and checksum, so that the payload decoder is reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quickstore::internals::{decode_record, encode_record};

fn check(frame: &[u8]) {
    if let Ok((record, len)) = decode_record(frame) {
        assert!(len <= frame.len());
        let mut again = Vec::new();
        if encode_record(&record, &mut again).is_ok() {
            assert_eq!(decode_record(&again).map(|(r, _)| r).ok(), Some(record));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let Ok(len) = u32::try_from(data.len()) else {
        return;
    };
    let len = len.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), data);
    let mut framed = Vec::with_capacity(data.len() + 8);
    framed.extend_from_slice(&len);
    framed.extend_from_slice(&crc.to_le_bytes());
    framed.extend_from_slice(data);
    check(&framed);
});
