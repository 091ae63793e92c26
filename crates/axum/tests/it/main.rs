//! The layer's integration tests, one binary with a module per concern (linking one binary
//! instead of a dozen is most of what building the tests costs). `observability` is the other
//! binary: it installs a process-wide tracing subscriber that no other test may share.
//!
//! Each module states what it covers; `support` is the scripted browser and the emulator
//! helpers they share.

#[macro_use]
mod support;

mod api;
mod app_options;
mod attacks;
mod cached_stores;
mod fits_any_app;
mod floods;
mod flow;
mod glob_import;
mod linked;
mod money;
mod negotiation;
mod placement;
mod refusals;
mod stores;
mod tabs;
