//! The callback's query handling: any query string; never a panic, and an accepted code is
//! 1 to 2048 bytes of printable ASCII.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelgates_axum::__fuzz;

fuzz_target!(|query: &str| {
    if let Ok(code) = __fuzz::callback_code(query) {
        assert!(!code.is_empty() && code.len() <= 2048, "{code:?}");
        assert!(code.bytes().all(|b| b.is_ascii_graphic()), "{code:?}");
    }
});
