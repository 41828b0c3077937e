//! Decoding arbitrary bytes as a journal record never panics, and what decodes re-encodes to
//! the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((record, len)) = quickstore::Record::decode(data) {
        let mut again = Vec::new();
        if record.encode(&mut again).is_ok() {
            assert_eq!(quickstore::Record::decode(&again).map(|(r, _)| r).ok(), Some(record));
            assert!(len <= data.len());
        }
    }
});
