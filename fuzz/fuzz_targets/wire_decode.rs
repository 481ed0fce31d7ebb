//! Arbitrary bytes -> `chibo_shared::wire::Message::decode`: never panics, and whatever decodes
//! survives encode -> decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chibo_fuzz::wire::check(data);
});
