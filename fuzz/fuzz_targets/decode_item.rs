//! Decoding arbitrary bytes as an item never panics, and what decodes re-encodes to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = quickstore::internals::decode_item(data) {
        let mut again = Vec::new();
        if quickstore::internals::encode_item(&item, &mut again).is_ok() {
            let decoded = quickstore::internals::decode_item(&again);
            assert_eq!(decoded.as_ref(), Ok(&item));
        }
    }
});
