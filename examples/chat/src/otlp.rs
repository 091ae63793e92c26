//! Spans to an OpenTelemetry collector (feature `otlp`): when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set, every span (the layer's `modelgates.*` spans among them) goes over OTLP/HTTP in
//! protobuf to `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces`, in batches, from the exporter's own
//! thread. The standard `OTEL_*` variables apply (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_SERVICE_NAME`, …); the
//! service is `example-chat` unless `OTEL_SERVICE_NAME` says otherwise.
//!
//! The requests go through opentelemetry-otlp's blocking reqwest client (the reqwest the app
//! already has), on the exporter's own thread: no second HTTP stack, nothing on the app's
//! runtime.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::registry::LookupSpan;

/// The variable whose presence turns the exporter on.
pub const ENDPOINT_VARIABLE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The exporter's provider: shut it down at exit so the last spans are sent.
pub struct Exporter(SdkTracerProvider);

impl Exporter {
    /// Sends what is left and stops the exporter's thread. Blocking: call it off the runtime.
    pub fn shutdown(self) {
        if let Err(error) = self.0.shutdown() {
            eprintln!("example-chat: the OTLP exporter did not shut down cleanly: {error}");
        }
    }
}

/// The `tracing` layer that exports spans, and its exporter, when `OTEL_EXPORTER_OTLP_ENDPOINT`
/// is set; `None` otherwise.
///
/// # Errors
///
/// When the exporter cannot be built from the `OTEL_*` variables.
pub fn layer_from_env<S>() -> Result<Option<(impl tracing_subscriber::Layer<S>, Exporter)>, String>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    if std::env::var_os(ENDPOINT_VARIABLE).is_none_or(|endpoint| endpoint.is_empty()) {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|error| format!("{ENDPOINT_VARIABLE}: cannot build the OTLP exporter: {error}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("example-chat");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("example-chat"));
    Ok(Some((layer, Exporter(provider))))
}
