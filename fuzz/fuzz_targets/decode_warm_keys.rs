//! Reading arbitrary bytes as a warm-restart file never panics, and what reads back encodes to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(saved) = quickstore::internals::decode_warm_keys(data) {
        assert_eq!(quickstore::internals::encode_warm_keys(&saved), data);
    }
});
