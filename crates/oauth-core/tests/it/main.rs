//! The protocol crate's integration tests, one binary with a module per concern: the flow and
//! the API against the emulator, the headless sign-in, the loopback receiver, and the user's money errors.

mod against_emulator;
mod headless;
mod loopback;
mod money;
