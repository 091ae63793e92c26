//! Key-cookie decoding (encrypted and signed): any `Cookie` header bytes; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelgates_axum::__fuzz;

fuzz_target!(|header: &[u8]| {
    let _ = __fuzz::open_key_cookie(header);
});
