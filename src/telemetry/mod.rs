//! What the store tells the application about its work, beside [`Stats`](crate::Stats): the
//! metrics it records through the [`metrics`](::metrics) facade ([`metrics`](self::metrics)),
//! how old its pending mutations are ([`ages`]), the reports handed to the application's
//! handlers ([`handlers`]), and the helpers its `tracing` spans share (here).

mod ages;
mod handlers;
mod metrics;

pub(crate) use ages::Ages;
pub use handlers::Refused;
pub(crate) use handlers::{Handlers, RefusedHandler};
pub(crate) use metrics::{
    Gauges, Metrics, FLUSH_BATCH_SECONDS, FLUSH_BATCH_WRITES, PUBLISH_INTERVAL, READ_REQUEST_KEYS,
};

use crate::error::Error;

/// Records a call's outcome in its span: `outcome` is `ok` or `error`, and `error` the
/// error's report.
pub(crate) fn record_outcome<T>(span: &tracing::Span, result: &Result<T, Error>) {
    match result {
        Ok(_) => {
            span.record("outcome", "ok");
        }
        Err(err) => {
            span.record("outcome", "error");
            span.record("error", tracing::field::display(err.report()));
        }
    }
}
