//! Names for the groups of key-store features, so that adding a store backend touches these
//! lists instead of every `cfg(any(feature = …))` in the crate.

/// `(cfg name, features that turn it on)`.
const GROUPS: [(&str, &[&str]); 3] = [
    // Keys sealed at rest: every database store.
    ("sealed_stores", &["postgres", "sqlite", "redis"]),
    // The SQL stores' shared statements and rows.
    ("sql_stores", &["postgres", "sqlite"]),
    // Stores reached over the network, whose URLs must ask for TLS.
    ("network_stores", &["postgres", "redis"]),
];

fn main() {
    let enabled = |feature: &str| {
        std::env::var_os(format!("CARGO_FEATURE_{}", feature.to_ascii_uppercase())).is_some()
    };
    for (name, features) in GROUPS {
        println!("cargo::rustc-check-cfg=cfg({name})");
        if features.iter().any(|feature| enabled(feature)) {
            println!("cargo::rustc-cfg={name}");
        }
    }
    println!("cargo::rerun-if-changed=build.rs");
}
