//! The flow and attack suites again, against an emulator built with `lenient_pkce`: a provider
//! that accepts a verifier for a code issued without a challenge (RFC 9700 §2.1.1 says it must
//! not). Every test must still pass: the layer defends itself without relying on the provider.
//! `support::lenient_provider` tells the suites which binary they run in.

// Each suite brings its own copy of the test support, as it does in its own binary.
#![allow(clippy::duplicate_mod)]

#[path = "flow.rs"]
mod flow;

#[path = "attacks.rs"]
mod attacks;

/// The suites pick the lenient emulator by this test binary's name.
#[test]
fn this_binary_runs_against_a_lenient_provider() {
    assert_eq!(env!("CARGO_CRATE_NAME"), "lenient");
}
