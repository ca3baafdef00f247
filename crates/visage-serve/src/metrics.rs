//! `/metrics` in the Prometheus text exposition format (version 0.0.4),
//! written by hand: three counters, two gauges and one histogram do not
//! need a metrics framework.
//!
//! - `visage_http_requests_total{route, method, status}`: route is the
//!   matched route pattern (`/v1/identities/{name}`) or `unmatched`, never
//!   the raw path, and method is one of the standard methods or `other`, so
//!   no client can add label rows: the set is bounded by routes × 10
//!   methods × the statuses the service answers;
//! - `visage_http_connections` / `visage_http_header_timeouts_total`: open
//!   connections, and those closed for not sending a request head in time;
//! - `visage_model_workers` / `_configured` / `visage_model_worker_panics_total`:
//!   model workers alive, wanted, and replaced after a panic;
//! - `visage_http_handler_panics_total`: request handlers that panicked
//!   (each answered 500, the service goes on);
//! - `visage_http_in_flight`: requests being served now;
//! - `visage_inference_queue_depth` / `_capacity`: photos waiting for a model worker;
//! - `visage_inference_seconds`: time a worker spends on one photo (decode,
//!   detect, align, embed), as a cumulative histogram.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the inference histogram: 5 ms to 10 s covers a
/// thumbnail on a fast core to a 50-megapixel photo on a slow one.
pub const INFERENCE_BUCKETS_S: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The service's counters and gauges, updated lock-free (atomics; the
/// request counts under one mutex) and rendered by [`Metrics::render`].
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Requests being served now (`visage_http_in_flight`).
    pub in_flight: AtomicUsize,
    /// Photos queued and not yet taken by a worker (`visage_inference_queue_depth`).
    pub queue_depth: AtomicUsize,
    /// Photos the queue holds before requests get 503 (`visage_inference_queue_capacity`).
    pub queue_capacity: AtomicUsize,
    /// Connections open now (`visage_http_connections`).
    pub connections_open: AtomicUsize,
    /// Connections closed for not sending a whole request head in time
    /// (`visage_http_header_timeouts_total`).
    pub header_timeouts: AtomicU64,
    /// Model workers ready to take photos (below `workers_configured`
    /// while a panicked one is being replaced).
    pub workers_alive: AtomicUsize,
    /// Model workers the pool was started with (`visage_model_workers_configured`).
    pub workers_configured: AtomicUsize,
    /// Workers that panicked on a photo and were replaced (`visage_model_worker_panics_total`).
    pub worker_panics: AtomicU64,
    /// Request handlers that panicked (answered 500).
    pub handler_panics: AtomicU64,
    /// Per bucket (non-cumulative), plus one for +Inf.
    inference_buckets: [AtomicU64; INFERENCE_BUCKETS_S.len() + 1],
    inference_count: AtomicU64,
    /// Sum in microseconds (an integer, so it can be an atomic).
    inference_sum_us: AtomicU64,
}

impl Metrics {
    /// Counts a request; `method` is reduced to [`method_label`] here, so no caller can grow the label set.
    pub fn record_request(&self, route: &str, method: &str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry((route.to_string(), method_label(method).to_string(), status)).or_default() += 1;
    }

    /// Adds one photo's worker time (decode, detect, align, embed) to the
    /// `visage_inference_seconds` histogram.
    pub fn observe_inference(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = INFERENCE_BUCKETS_S.iter().position(|&bound| seconds <= bound).unwrap_or(INFERENCE_BUCKETS_S.len());
        self.inference_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.inference_count.fetch_add(1, Ordering::Relaxed);
        self.inference_sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Requests counted so far with this route and status (for tests and health).
    pub fn requests(&self, route: &str, status: u16) -> u64 {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.iter().filter(|((r, _, s), _)| r == route && *s == status).map(|(_, n)| n).sum()
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP visage_http_requests_total HTTP requests answered, by matched route, method and status.\n");
        out.push_str("# TYPE visage_http_requests_total counter\n");
        for ((route, method, status), count) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "visage_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}", escape(route));
        }
        let gauges = [
            ("visage_http_in_flight", "Requests being served now.", &self.in_flight),
            ("visage_http_connections", "Connections open now.", &self.connections_open),
            ("visage_inference_queue_depth", "Photos waiting for a model worker.", &self.queue_depth),
            ("visage_inference_queue_capacity", "Photos the queue holds before requests get 503.", &self.queue_capacity),
            ("visage_model_workers", "Model workers ready to take photos.", &self.workers_alive),
            ("visage_model_workers_configured", "Model workers the service runs when none is being replaced.", &self.workers_configured),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}", value.load(Ordering::Relaxed));
        }
        let counters = [
            ("visage_http_header_timeouts_total", "Connections closed for not sending a whole request head in time.", &self.header_timeouts),
            ("visage_model_worker_panics_total", "Model workers that panicked on a photo and were replaced.", &self.worker_panics),
            ("visage_http_handler_panics_total", "Request handlers that panicked (answered 500).", &self.handler_panics),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
        out.push_str("# HELP visage_inference_seconds Time a model worker spends on one photo (decode, detect, align, embed).\n");
        out.push_str("# TYPE visage_inference_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in INFERENCE_BUCKETS_S.iter().enumerate() {
            cumulative += self.inference_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "visage_inference_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.inference_buckets[INFERENCE_BUCKETS_S.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "visage_inference_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "visage_inference_seconds_sum {}", self.inference_sum_us.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "visage_inference_seconds_count {}", self.inference_count.load(Ordering::Relaxed));
        out
    }
}

/// The methods counted under their own name; any other (a client may send
/// any token as a method) is counted as `other`.
const KNOWN_METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// The `method` label of a request: one of the nine standard methods,
/// matched case-sensitively, or `other`.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS.iter().find(|known| **known == method).copied().unwrap_or("other")
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counters_are_labelled() {
        let metrics = Metrics::default();
        for ms in [3, 7, 7, 400, 20_000] {
            metrics.observe_inference(Duration::from_millis(ms));
        }
        metrics.record_request("/v1/search", "POST", 200);
        metrics.record_request("/v1/search", "POST", 200);
        metrics.record_request("/v1/search", "POST", 503);
        metrics.queue_capacity.store(64, Ordering::Relaxed);
        let text = metrics.render();
        // 3 ms ≤ 0.005; 7 ms twice ≤ 0.01; 400 ms ≤ 0.5; 20 s only in +Inf.
        for line in [
            "visage_inference_seconds_bucket{le=\"0.005\"} 1",
            "visage_inference_seconds_bucket{le=\"0.01\"} 3",
            "visage_inference_seconds_bucket{le=\"0.25\"} 3",
            "visage_inference_seconds_bucket{le=\"0.5\"} 4",
            "visage_inference_seconds_bucket{le=\"10\"} 4",
            "visage_inference_seconds_bucket{le=\"+Inf\"} 5",
            "visage_inference_seconds_sum 20.417",
            "visage_inference_seconds_count 5",
            "visage_http_requests_total{route=\"/v1/search\",method=\"POST\",status=\"200\"} 2",
            "visage_http_requests_total{route=\"/v1/search\",method=\"POST\",status=\"503\"} 1",
            "visage_inference_queue_capacity 64",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert_eq!(metrics.requests("/v1/search", 200), 2);
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
        // Made-up methods share one row.
        metrics.record_request("unmatched", "BREW", 404);
        metrics.record_request("unmatched", "PROPFIND-0123", 404);
        assert!(metrics.render().lines().any(|l| l == "visage_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 2"));
        assert_eq!(method_label("get"), "other", "methods are case-sensitive tokens");
    }
}
