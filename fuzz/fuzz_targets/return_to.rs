//! return_to sanitising: any string; the result stays on the site, also after one more
//! percent-decoding, and sanitising it again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelgates_axum::__fuzz;

fn stays_on_site(target: &str) -> bool {
    let base = url::Url::parse("https://app.example/").unwrap();
    base.join(target)
        .is_ok_and(|u| u.scheme() == "https" && u.host_str() == Some("app.example") && u.port().is_none())
}

fuzz_target!(|candidate: &str| {
    let kept = __fuzz::sanitize_return_to(candidate);
    assert!(stays_on_site(kept), "{candidate:?} -> {kept:?}");
    let decoded = percent_encoding::percent_decode_str(kept).decode_utf8_lossy();
    assert!(stays_on_site(&decoded), "{candidate:?} -> {kept:?} -> {decoded:?}");
    assert_eq!(__fuzz::sanitize_return_to(kept), kept);
});
