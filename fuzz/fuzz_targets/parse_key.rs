//! Parsing arbitrary strings as keys never panics, every parsed key renders back to the string
//! it came from, and what parses with a registry is a well-formed rendered key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let Ok(kinds) = quickstore::Kinds::of(["User", "UserGroup", "Post", "P"]) else {
        return;
    };
    if let Ok(key) = kinds.parse(data) {
        assert_eq!(key.as_str(), data);
        assert!(kinds.parse(key.as_str()).as_ref() == Ok(&key));
        assert!(data.parse::<quickstore::RenderedKey>().is_ok());
    }
});
