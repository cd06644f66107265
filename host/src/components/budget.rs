//! What one example may spend, beyond guest compute and memory: a
//! wall-clock deadline shared by everything done for the example (method,
//! tools, metrics, and every host call they make), and per-call budgets of
//! model calls, generated tokens and items per host call.
//!
//! Two kinds of answer, as wasmtime's WASI draws the line: a budget refusal
//! is a guest-visible `result` error (the guest can stop gracefully); a
//! guest that calls again after a refusal, or an example past its deadline,
//! is stopped with a trap carrying [`Stopped`], which the plugin host
//! classifies as `budget` or `deadline`.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// The deadline of one example; cheap to copy into every store working on it.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Option<Instant>,
    limit: Duration,
}

impl Deadline {
    /// No deadline (plan-time calls, `example_timeout_ms = 0`).
    pub fn none() -> Self {
        Self {
            at: None,
            limit: Duration::ZERO,
        }
    }

    /// `limit` from now; a zero limit means none.
    pub fn after(limit: Duration) -> Self {
        if limit.is_zero() {
            return Self::none();
        }
        Self {
            at: Some(Instant::now() + limit),
            limit,
        }
    }

    pub fn expired(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }

    /// Time left; None without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Runs `fut` until it finishes or the deadline passes; on expiry the
    /// future is dropped, which cancels what it was waiting for (a
    /// generation leaves its batch and frees its KV cache).
    pub async fn run<F: Future>(&self, fut: F) -> Option<F::Output> {
        match self.at {
            None => Some(fut.await),
            Some(at) => tokio::time::timeout_at(at.into(), fut).await.ok(),
        }
    }
}

/// Per-call budgets of one plugin, resolved from its `limits` and `[sandbox]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    pub max_model_calls: u64,
    pub max_generated_tokens: u64,
    pub max_items_per_call: u64,
}

impl Budgets {
    pub const UNLIMITED: Budgets = Budgets {
        max_model_calls: u64::MAX,
        max_generated_tokens: u64::MAX,
        max_items_per_call: u64::MAX,
    };
}

/// What a host call asks of the budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// A generation: one model call, tokens.
    Generate,
    /// Continuation scoring: one model call carrying this many items.
    Score { continuations: usize },
    /// A call carrying items: texts to embed, pairs to classify, k.
    Items(usize),
}

/// What one store has spent of its [`Budgets`].
#[derive(Debug)]
pub struct Meter {
    pub budgets: Budgets,
    pub model_calls: u64,
    pub generated_tokens: u64,
    /// The first refusal; a second request over budget stops the guest.
    refused: Option<String>,
}

impl Meter {
    pub fn new(budgets: Budgets) -> Self {
        Self {
            budgets,
            model_calls: 0,
            generated_tokens: 0,
            refused: None,
        }
    }

    /// Admits one host call of `what`. The first request over a budget is
    /// refused (`Ok(Err(reason))`, which the guest sees and can handle); a
    /// second one stops the guest (`Err`). Requests within the budgets are
    /// admitted after a refusal too (a smaller batch, a last log line).
    pub fn admit(&mut self, what: &'static str, ask: Ask) -> Result<Result<(), String>, Stopped> {
        let b = self.budgets;
        let (items, model_call) = match ask {
            Ask::Generate => (0, true),
            Ask::Score { continuations } => (continuations, true),
            Ask::Items(n) => (n, false),
        };
        let refusal = if items as u64 > b.max_items_per_call {
            Some(format!(
                "budget exceeded: {what} with {items} items, over max_items_per_call {}",
                b.max_items_per_call
            ))
        } else if model_call && self.model_calls >= b.max_model_calls {
            Some(format!(
                "budget exceeded: max_model_calls {} reached ({what})",
                b.max_model_calls
            ))
        } else if matches!(ask, Ask::Generate) && self.tokens_left() == 0 {
            Some(format!(
                "budget exceeded: max_generated_tokens {} reached ({what})",
                b.max_generated_tokens
            ))
        } else {
            None
        };
        if let Some(r) = refusal {
            if let Some(first) = &self.refused {
                return Err(Stopped::Budget {
                    during: what,
                    first: first.clone(),
                });
            }
            self.refused = Some(r.clone());
            return Ok(Err(r));
        }
        if model_call {
            self.model_calls += 1;
        }
        Ok(Ok(()))
    }

    /// The most tokens the next generation may produce.
    pub fn tokens_left(&self) -> u64 {
        self.budgets
            .max_generated_tokens
            .saturating_sub(self.generated_tokens)
    }
}

/// Why the host stopped a guest in the middle of a call: a trap's error,
/// told apart from a guest's own trap by downcasting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The example's deadline passed while the guest was in `during`
    /// (a host call's name, or "guest compute").
    Deadline { during: &'static str },
    /// The guest asked for more than its budget again in `during` after a
    /// first refusal (`first`).
    Budget { during: &'static str, first: String },
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stopped::Deadline { during } => write!(f, "example deadline passed in {during}"),
            Stopped::Budget { during, first } => write!(
                f,
                "kept calling after a budget refusal ({first}); stopped in {during}"
            ),
        }
    }
}

impl std::error::Error for Stopped {}

/// Guest compute time of the current call: wall time minus time spent in
/// host calls (a long generation must not count against the plugin).
#[derive(Debug)]
pub struct GuestBudget {
    pub started: Instant,
    pub in_host: Duration,
    pub limit: Duration,
}

impl GuestBudget {
    pub fn new(limit: Duration) -> Self {
        Self {
            started: Instant::now(),
            in_host: Duration::ZERO,
            limit,
        }
    }

    pub fn restart(&mut self) {
        self.started = Instant::now();
        self.in_host = Duration::ZERO;
    }

    pub fn exhausted(&self) -> bool {
        self.started.elapsed().saturating_sub(self.in_host) >= self.limit
    }
}

/// How much of what a plugin produces is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputCaps {
    /// Answer text and contexts; over it the example fails.
    pub max_answer_bytes: usize,
    pub max_trace_steps: usize,
    pub max_log_bytes: usize,
}

impl OutputCaps {
    pub const UNLIMITED: OutputCaps = OutputCaps {
        max_answer_bytes: usize::MAX,
        max_trace_steps: usize::MAX,
        max_log_bytes: usize::MAX,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(calls: u64, tokens: u64, items: u64) -> Budgets {
        Budgets {
            max_model_calls: calls,
            max_generated_tokens: tokens,
            max_items_per_call: items,
        }
    }

    #[test]
    fn a_refusal_is_visible_once_then_stops_the_guest() {
        let mut m = Meter::new(budgets(2, 100, 10));
        assert_eq!(m.admit("inference.complete", Ask::Generate), Ok(Ok(())));
        assert_eq!(m.admit("inference.complete", Ask::Generate), Ok(Ok(())));
        let refused = m
            .admit("inference.complete", Ask::Generate)
            .unwrap()
            .unwrap_err();
        assert!(refused.contains("max_model_calls 2 reached"), "{refused}");
        match m.admit("inference.chat", Ask::Generate) {
            Err(Stopped::Budget { during, first }) => {
                assert_eq!(
                    (during, first.as_str()),
                    ("inference.chat", refused.as_str())
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn items_and_tokens_are_checked() {
        let mut m = Meter::new(budgets(10, 100, 10));
        let r = m
            .admit("embeddings.embed", Ask::Items(11))
            .unwrap()
            .unwrap_err();
        assert!(r.contains("11 items, over max_items_per_call 10"), "{r}");
        // A request within budget after the refusal is still admitted.
        assert_eq!(m.admit("embeddings.embed", Ask::Items(10)), Ok(Ok(())));
        assert!(m.admit("embeddings.embed", Ask::Items(11)).is_err());

        let mut m = Meter::new(budgets(10, 100, 10));
        m.generated_tokens = 100;
        assert_eq!(m.tokens_left(), 0);
        // Scoring generates nothing: still admitted.
        assert_eq!(
            m.admit("inference.score", Ask::Score { continuations: 3 }),
            Ok(Ok(()))
        );
        let r = m
            .admit("inference.complete", Ask::Generate)
            .unwrap()
            .unwrap_err();
        assert!(r.contains("max_generated_tokens 100"), "{r}");
    }

    #[tokio::test]
    async fn a_deadline_cancels_what_it_waits_for() {
        let d = Deadline::after(Duration::from_millis(30));
        assert!(!d.expired());
        let never = std::future::pending::<()>();
        assert_eq!(d.run(never).await, None);
        assert!(d.expired());
        assert_eq!(Deadline::none().run(async { 7 }).await, Some(7));
        assert_eq!(Deadline::after(Duration::ZERO).remaining(), None);
    }
}
