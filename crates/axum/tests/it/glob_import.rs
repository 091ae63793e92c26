//! `use modelgates_axum::*;` must not shadow anything an app uses: the protocol crate is
//! re-exported as `oauth_core`, so `core::…` still names the standard `core` crate.

#![allow(unused_imports)]

use modelgates_axum::*;

#[test]
fn a_glob_import_keeps_core_usable() {
    assert_eq!(core::mem::size_of::<u16>(), 2);
    let _ = std::any::type_name::<ModelGatesConfig>();
}
