//! `forge:plugin/http`: GET requests the host performs for a plugin.
//!
//! Configured once per experiment ([`HttpClient`], from `[http]`): the
//! timeout, a minimum interval between requests to one host (politeness: a
//! request waits for its slot instead of failing), a response cache keyed by
//! URL shared by every example and tool of the experiment, a body size cap
//! and a `User-Agent` naming forge (Wikipedia refuses anonymous clients).
//! Allowed per plugin: only the `host:port` pairs in its
//! `grants.allowed_outbound_hosts`, checked on every call; redirects are not
//! followed (a 3xx comes back as a response), so a granted host cannot send
//! the request on to one that is not. Every request is recorded
//! ([`HttpRecord`]) with the run.
//!
//! `ureq` (blocking, rustls) does the HTTP; its calls run on tokio's blocking
//! pool so examples in flight keep going.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::CapabilityState;
use crate::components::bindings::http::{Host, HttpError, Response};

/// Requests plugins make through the host (`forge:plugin/http`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Whole-request timeout (connect, send, read the body), ms.
    #[serde(default = "default_http_timeout_ms")]
    pub timeout_ms: u64,
    /// Minimum time between two requests to the same host:port, ms (0: none).
    #[serde(default = "default_min_interval_ms")]
    pub min_interval_ms: u64,
    /// Answer a repeated GET of the same URL from memory (for the experiment).
    #[serde(default = "cache_by_default")]
    pub cache: bool,
    /// Bodies larger than this fail the request, KiB.
    #[serde(default = "default_max_body_kb")]
    pub max_body_kb: u64,
    /// Sent with every request; default `forge-host/<version> (LLM research
    /// harness; ureq)`. Wikimedia asks for a way to contact you: add it here.
    #[serde(default)]
    pub user_agent: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout_ms: default_http_timeout_ms(),
            min_interval_ms: default_min_interval_ms(),
            cache: true,
            max_body_kb: default_max_body_kb(),
            user_agent: None,
        }
    }
}

fn default_http_timeout_ms() -> u64 {
    10_000
}
fn default_min_interval_ms() -> u64 {
    100
}
fn default_max_body_kb() -> u64 {
    4096
}

fn cache_by_default() -> bool {
    true
}

/// One request, stored with the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpRecord {
    pub url: String,
    pub status: Option<u16>,
    pub cached: bool,
    pub latency_ms: f64,
    pub bytes: usize,
    pub error: Option<String>,
}

#[derive(Clone)]
struct Cached {
    status: u16,
    content_type: Option<String>,
    body: String,
}

/// The experiment's HTTP client.
pub struct HttpClient {
    config: HttpConfig,
    /// Honours the HTTP(S)_PROXY environment for the outside world.
    agent: ureq::Agent,
    /// Never through a proxy: loopback and test servers.
    direct: ureq::Agent,
    cache: Mutex<HashMap<String, Cached>>,
    /// host:port → earliest start of its next request.
    next_slot: Mutex<HashMap<String, Instant>>,
}

pub fn user_agent() -> String {
    format!(
        "forge-host/{} (LLM research harness; ureq)",
        env!("CARGO_PKG_VERSION")
    )
}

impl HttpClient {
    pub fn new(config: &HttpConfig) -> Self {
        let agent = |direct: bool| -> ureq::Agent {
            let mut b = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_millis(config.timeout_ms)))
                .http_status_as_error(false)
                .max_redirects(0)
                .max_redirects_will_error(false)
                .user_agent(config.user_agent.clone().unwrap_or_else(user_agent));
            if direct {
                b = b.proxy(None);
            }
            b.build().into()
        };
        Self {
            config: config.clone(),
            agent: agent(false),
            direct: agent(true),
            cache: Mutex::new(HashMap::new()),
            next_slot: Mutex::new(HashMap::new()),
        }
    }

    /// How long a request to `host` must wait for its slot; reserves it.
    fn reserve_slot(&self, host: &str) -> Duration {
        let interval = Duration::from_millis(self.config.min_interval_ms);
        if interval.is_zero() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut slots = self.next_slot.lock().unwrap();
        let start = slots.get(host).copied().filter(|t| *t > now).unwrap_or(now);
        slots.insert(host.to_string(), start + interval);
        start - now
    }

    /// GET `url` for a plugin granted `allowed` (`host:port` pairs).
    pub async fn get(&self, url: &str, allowed: &[String]) -> (Result<Response, HttpError>, bool) {
        let target = match target(url) {
            Ok(t) => t,
            Err(e) => return (Err(e), false),
        };
        if !allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&target.host_port))
        {
            return (
                Err(HttpError::Denied(format!(
                    "{} is not granted to this plugin (granted: {}); add \"{}\" to its grants.allowed_outbound_hosts in the experiment config",
                    target.host_port,
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    },
                    target.host_port
                ))),
                false,
            );
        }
        if self.config.cache
            && let Some(c) = self.cache.lock().unwrap().get(url).cloned()
        {
            return (
                Ok(Response {
                    status: c.status,
                    content_type: c.content_type,
                    body: c.body,
                    cached: true,
                }),
                true,
            );
        }
        let wait = self.reserve_slot(&target.host_port);
        if !wait.is_zero() {
            tracing::debug!(host = %target.host_port, wait_ms = wait.as_millis() as u64, "rate limit");
            tokio::time::sleep(wait).await;
        }
        let agent = if target.loopback {
            self.direct.clone()
        } else {
            self.agent.clone()
        };
        let limit = self.config.max_body_kb * 1024;
        let owned = url.to_string();
        let fetched = tokio::task::spawn_blocking(move || -> Result<Cached, ureq::Error> {
            let mut resp = agent.get(&owned).call()?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = resp.body_mut().with_config().limit(limit).read_to_vec()?;
            Ok(Cached {
                status,
                content_type,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })
        })
        .await;
        let result = match fetched {
            Ok(Ok(c)) => {
                if self.config.cache && (200..300).contains(&c.status) {
                    self.cache
                        .lock()
                        .unwrap()
                        .insert(url.to_string(), c.clone());
                }
                Ok(Response {
                    status: c.status,
                    content_type: c.content_type,
                    body: c.body,
                    cached: false,
                })
            }
            Ok(Err(e)) => Err(classify(e, &self.config)),
            Err(join) => Err(HttpError::Failed(format!("request task failed: {join}"))),
        };
        (result, false)
    }
}

/// Where a URL goes: `host:port` as grants write it.
struct Target {
    host_port: String,
    loopback: bool,
}

fn target(url: &str) -> Result<Target, HttpError> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| HttpError::Denied(format!("{url:?} is not a valid URL: {e}")))?;
    let port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => {
            return Err(HttpError::Denied(format!(
                "{url:?}: only http and https URLs are allowed"
            )));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| HttpError::Denied(format!("{url:?} has no host")))?
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(port);
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    Ok(Target {
        host_port: format!("{host}:{port}"),
        loopback,
    })
}

fn classify(e: ureq::Error, config: &HttpConfig) -> HttpError {
    match e {
        ureq::Error::Timeout(what) => HttpError::Timeout(format!(
            "no complete response within {} ms ({what})",
            config.timeout_ms
        )),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            HttpError::Timeout(format!(
                "no complete response within {} ms ({io})",
                config.timeout_ms
            ))
        }
        ureq::Error::BodyExceedsLimit(n) => HttpError::Failed(format!(
            "response body over the {} KiB cap ([http] max_body_kb) at {n} bytes",
            config.max_body_kb
        )),
        other => HttpError::Failed(other.to_string()),
    }
}

/// `denied: …`, `timeout: …`, `failed: …`, as stored with the run.
pub fn error_text(e: &HttpError) -> String {
    match e {
        HttpError::Denied(m) => format!("denied: {m}"),
        HttpError::Timeout(m) => format!("timeout: {m}"),
        HttpError::Failed(m) => format!("failed: {m}"),
    }
}

impl Host for CapabilityState {
    async fn get(&mut self, url: String) -> wasmtime::Result<Result<Response, HttpError>> {
        let started = Instant::now();
        let span = tracing::info_span!("http_get", url = %url);
        let client = self.ctx.caps.http.clone();
        let deadline = self.ctx.deadline;
        let request = client
            .get(&url, self.allowed_outbound_hosts.names())
            .instrument(span.clone());
        let done = deadline.run(request).await;
        // Time waiting on the network does not count against the guest.
        let (result, cached) = self.host_call_done("http.get", started, done)?;
        let elapsed = started.elapsed();
        let record = HttpRecord {
            url,
            status: result.as_ref().ok().map(|r| r.status),
            cached,
            latency_ms: elapsed.as_secs_f64() * 1e3,
            bytes: result.as_ref().map_or(0, |r| r.body.len()),
            error: result.as_ref().err().map(error_text),
        };
        span.in_scope(|| {
            tracing::info!(
                status = record.status,
                cached,
                latency_ms = record.latency_ms,
                error = record.error.as_deref(),
                "http request"
            )
        });
        self.ctx.http_calls.push(record);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_host_port_with_scheme_defaults() {
        let t = target("https://En.Wikipedia.org/w/api.php?x=1").unwrap();
        assert_eq!(
            (t.host_port.as_str(), t.loopback),
            ("en.wikipedia.org:443", false)
        );
        let t = target("http://127.0.0.1:8080/w/api.php").unwrap();
        assert_eq!((t.host_port.as_str(), t.loopback), ("127.0.0.1:8080", true));
        assert!(target("http://localhost/").unwrap().loopback);
        assert!(matches!(target("ftp://x.org/"), Err(HttpError::Denied(_))));
        assert!(matches!(target("not a url"), Err(HttpError::Denied(_))));
    }

    #[tokio::test]
    async fn an_ungranted_host_is_denied_naming_the_grant() {
        let c = HttpClient::new(&HttpConfig::default());
        let (r, cached) = c
            .get("https://example.org/x", &["127.0.0.1:1".to_string()])
            .await;
        let Err(HttpError::Denied(m)) = r else {
            panic!("{r:?}")
        };
        assert!(!cached);
        assert!(
            m.contains("example.org:443 is not granted")
                && m.contains("add \"example.org:443\" to its grants.allowed_outbound_hosts"),
            "{m}"
        );
    }

    #[test]
    fn the_rate_limit_spaces_requests_per_host() {
        // Slot n of a host starts n intervals after the first: a wait plus
        // the time since the first reservation reaches it, however slowly
        // this thread runs (no wall-clock slack to be flaky).
        let interval = Duration::from_secs(60);
        let c = HttpClient::new(&HttpConfig {
            min_interval_ms: interval.as_millis() as u64,
            ..HttpConfig::default()
        });
        let first = Instant::now();
        assert_eq!(c.reserve_slot("a:80"), Duration::ZERO);
        for n in 1..=2u32 {
            let wait = c.reserve_slot("a:80");
            let since = first.elapsed();
            assert!(
                wait + since >= n * interval,
                "slot {n}: {wait:?} + {since:?}"
            );
            assert!(wait <= n * interval, "slot {n}: {wait:?}");
        }
        assert_eq!(c.reserve_slot("b:80"), Duration::ZERO);
    }
}
