//! Flow-cookie decoding: any `Cookie` header bytes, never a panic. The seed corpus holds a
//! genuine header, so mutations around a valid signature are explored too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelgates_axum::__fuzz;

fuzz_target!(|header: &[u8]| {
    let _ = __fuzz::open_flow_cookie(header);
});
