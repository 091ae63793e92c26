//! How many key exchanges the callback route may send to ModelGates: the settings
//! ([`ExchangeLimits`], [`RateLimit`], [`ClientKey`], re-exported from
//! [`config`](crate::config)) and the gate the callback passes. A leaf:
//! the configuration and the flow both use it.

mod gate;
mod settings;

pub(crate) use gate::{ExchangeGate, NotYet};
pub use settings::{
    ClientKey, DEFAULT_CLIENT_EXCHANGE_RATE, DEFAULT_GLOBAL_EXCHANGE_RATE, ExchangeLimits,
    RateLimit,
};
