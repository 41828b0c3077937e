//! Parsing arbitrary strings as keys never panics, and every parsed key renders back to the
//! string it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let Ok(kinds) = quickstore::Kinds::of(["User", "UserGroup", "Post", "P"]) else {
        return;
    };
    if let Ok(key) = kinds.parse(data) {
        assert_eq!(key.to_string(), data);
        assert!(key.validate().is_ok());
    }
});
