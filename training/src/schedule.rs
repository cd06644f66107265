//! Learning-rate schedules, as `transformers.get_scheduler` defines them.
//!
//! `step` is the number of optimizer steps already taken (the scheduler's
//! `current_step`): the first update uses `lr(0)`, so with warm-up the
//! first update has learning rate 0, as in Hugging Face.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// `get_linear_schedule_with_warmup`.
    Linear,
    /// `get_cosine_schedule_with_warmup` (half a cycle).
    Cosine,
    /// `get_constant_schedule_with_warmup` (plain constant with no warm-up).
    Constant,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub base_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl Schedule {
    /// Learning rate of the update after `step` updates.
    pub fn lr(&self, step: u64) -> f64 {
        self.base_lr * self.factor(step)
    }

    fn factor(&self, step: u64) -> f64 {
        let (s, w, n) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        if step < self.warmup_steps {
            return s / w.max(1.0);
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => ((n - s) / (n - w).max(1.0)).max(0.0),
            ScheduleKind::Cosine => {
                let progress = (s - w) / (n - w).max(1.0);
                (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
            }
        }
    }
}

/// Hugging Face's `get_warmup_steps`: `ceil(total · ratio)`.
pub fn warmup_from_ratio(total_steps: u64, ratio: f64) -> u64 {
    (total_steps as f64 * ratio).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(kind: ScheduleKind, warmup: u64) -> Schedule {
        Schedule {
            kind,
            base_lr: 1e-3,
            warmup_steps: warmup,
            total_steps: 10,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-15
    }

    /// Values of `lr_lambda` worked by hand from transformers' definitions.
    #[test]
    fn linear_with_warmup() {
        let s = sched(ScheduleKind::Linear, 2);
        let want = [
            0.0,
            0.5,
            1.0,
            7.0 / 8.0,
            6.0 / 8.0,
            5.0 / 8.0,
            0.5,
            3.0 / 8.0,
            0.25,
            1.0 / 8.0,
            0.0,
            0.0,
        ];
        for (step, f) in want.iter().enumerate() {
            assert!(
                close(s.lr(step as u64), 1e-3 * f),
                "step {step}: {}",
                s.lr(step as u64)
            );
        }
        // No warm-up: the first update has the full rate, then 9/10, ...
        let s = sched(ScheduleKind::Linear, 0);
        assert!(close(s.lr(0), 1e-3) && close(s.lr(1), 0.9e-3) && close(s.lr(9), 0.1e-3));
    }

    #[test]
    fn cosine_with_warmup() {
        let s = sched(ScheduleKind::Cosine, 2);
        assert!(close(s.lr(1), 0.5e-3));
        assert!(close(s.lr(2), 1e-3));
        // Half-way through the decay (step 6 of 2..10): cos(π/2) → 0.5.
        assert!(close(s.lr(6), 0.5e-3));
        assert!(close(s.lr(10), 0.0));
        let quarter = 0.5 * (1.0 + (std::f64::consts::PI * 0.25).cos());
        assert!(close(s.lr(4), 1e-3 * quarter));
    }

    #[test]
    fn constant_with_and_without_warmup() {
        let s = sched(ScheduleKind::Constant, 4);
        assert!(close(s.lr(1), 0.25e-3) && close(s.lr(4), 1e-3) && close(s.lr(100), 1e-3));
        assert!(close(sched(ScheduleKind::Constant, 0).lr(0), 1e-3));
    }

    #[test]
    fn warmup_ratio_rounds_up() {
        assert_eq!(warmup_from_ratio(20, 0.1), 2);
        assert_eq!(warmup_from_ratio(20, 0.11), 3);
        assert_eq!(warmup_from_ratio(20, 0.0), 0);
    }
}
