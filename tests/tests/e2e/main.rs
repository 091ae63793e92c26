//! Workspace-level tests, one binary with a module per concern: example-chat over real HTTP
//! (`e2e_chat`), example-linked-accounts over real HTTP (`linked_accounts`), ModelGates failing (`faults`), the key stores failing behind the fault proxy
//! (`outages`), every emulator answer against the published schema (`schema`), the official
//! SDKs as the emulator's clients (`sdks`), and real Chromium (`browser`).

mod browser;
mod e2e_chat;
mod faults;
mod linked_accounts;
mod outages;
mod schema;
mod sdks;
