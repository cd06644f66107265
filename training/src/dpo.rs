//! The DPO objective and TRL's metrics.
//!
//! With `Δ = (π_c − ref_c) − (π_r − ref_r)` (sums of completion-token
//! log-probabilities), TRL's `DPOTrainer` computes per pair:
//! - `sigmoid`: `−log σ(β Δ)` (label smoothing 0),
//! - `hinge`: `relu(1 − β Δ)`,
//! - `ipo`: `(Δ̄ − 1/(2β))²` where `Δ̄` divides each log-ratio by its
//!   completion's length (`completion_mask.sum(1).clamp(min=1)`) before
//!   the difference. Only the loss is length-averaged: TRL's reward and
//!   log-prob metrics use the sums for every loss type.
//!
//! The loss is the mean over pairs. Computed in f64 from the model's sums.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossType {
    Sigmoid,
    Ipo,
    Hinge,
}

impl LossType {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "sigmoid" => Ok(Self::Sigmoid),
            "ipo" => Ok(Self::Ipo),
            "hinge" => Ok(Self::Hinge),
            other => Err(TrainError::Config(format!(
                "unknown DPO loss type {other:?} (sigmoid, ipo or hinge)"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DpoConfig {
    pub beta: f64,
    pub loss_type: LossType,
}

/// One micro-batch's log-probabilities: policy sums (differentiable),
/// reference sums (constants) and completion lengths, chosen and rejected.
pub struct PairLogps<'a> {
    pub policy_chosen: &'a Tensor,
    pub policy_rejected: &'a Tensor,
    pub ref_chosen: &'a [f64],
    pub ref_rejected: &'a [f64],
    pub chosen_lens: &'a [usize],
    pub rejected_lens: &'a [usize],
}

/// TRL's logged values for a batch (means over its pairs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DpoMetrics {
    pub loss: f64,
    pub rewards_chosen: f64,
    pub rewards_rejected: f64,
    pub rewards_margins: f64,
    pub rewards_accuracies: f64,
    pub logps_chosen: f64,
    pub logps_rejected: f64,
}

impl DpoMetrics {
    /// The values under TRL's log keys.
    pub fn trl_names(&self) -> [(&'static str, f64); 7] {
        [
            ("loss", self.loss),
            ("rewards/chosen", self.rewards_chosen),
            ("rewards/rejected", self.rewards_rejected),
            ("rewards/margins", self.rewards_margins),
            ("rewards/accuracies", self.rewards_accuracies),
            ("logps/chosen", self.logps_chosen),
            ("logps/rejected", self.logps_rejected),
        ]
    }

    /// The mean of several micro-batches' metrics (what TRL logs for a
    /// step with gradient accumulation).
    pub fn mean(all: &[DpoMetrics]) -> DpoMetrics {
        let n = all.len().max(1) as f64;
        let sum = |f: fn(&DpoMetrics) -> f64| all.iter().map(f).sum::<f64>() / n;
        DpoMetrics {
            loss: sum(|m| m.loss),
            rewards_chosen: sum(|m| m.rewards_chosen),
            rewards_rejected: sum(|m| m.rewards_rejected),
            rewards_margins: sum(|m| m.rewards_margins),
            rewards_accuracies: sum(|m| m.rewards_accuracies),
            logps_chosen: sum(|m| m.logps_chosen),
            logps_rejected: sum(|m| m.logps_rejected),
        }
    }
}

/// The mean DPO loss over the pairs (a differentiable f64 scalar) and its
/// metrics.
pub fn dpo_loss(config: &DpoConfig, lp: &PairLogps) -> Result<(Tensor, DpoMetrics)> {
    let n = lp.ref_chosen.len();
    let sizes = [
        lp.policy_chosen.elem_count(),
        lp.policy_rejected.elem_count(),
        lp.ref_rejected.len(),
        lp.chosen_lens.len(),
        lp.rejected_lens.len(),
    ];
    if n == 0 || sizes.iter().any(|&s| s != n) {
        return Err(TrainError::Batch(format!(
            "DPO inputs disagree on the number of pairs: {n} and {sizes:?}"
        )));
    }
    let beta = config.beta;
    let consts = |v: &[f64]| Tensor::from_slice(v, n, &Device::Cpu);
    let pc = lp.policy_chosen.to_dtype(DType::F64)?;
    let pr = lp.policy_rejected.to_dtype(DType::F64)?;
    let chosen_lr = (&pc - consts(lp.ref_chosen)?)?;
    let rejected_lr = (&pr - consts(lp.ref_rejected)?)?;
    let losses = match config.loss_type {
        LossType::Sigmoid => softplus(&((&chosen_lr - &rejected_lr)? * -beta)?)?,
        LossType::Hinge => ((&chosen_lr - &rejected_lr)? * -beta)?
            .affine(1.0, 1.0)?
            .relu()?,
        LossType::Ipo => {
            let inv = |lens: &[usize]| {
                let v: Vec<f64> = lens.iter().map(|&l| 1.0 / l.max(1) as f64).collect();
                consts(&v)
            };
            let avg =
                ((&chosen_lr * inv(lp.chosen_lens)?)? - (&rejected_lr * inv(lp.rejected_lens)?)?)?;
            avg.affine(1.0, -1.0 / (2.0 * beta))?.sqr()?
        }
    };
    let loss = losses.mean_all()?;

    let v = |t: &Tensor| -> Result<Vec<f64>> { Ok(t.detach().to_vec1::<f64>()?) };
    let (cr, rr) = (v(&chosen_lr)?, v(&rejected_lr)?);
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let rc: Vec<f64> = cr.iter().map(|x| beta * x).collect();
    let rj: Vec<f64> = rr.iter().map(|x| beta * x).collect();
    let margins: Vec<f64> = rc.iter().zip(&rj).map(|(c, r)| c - r).collect();
    let acc: Vec<f64> = rc
        .iter()
        .zip(&rj)
        .map(|(c, r)| f64::from(u8::from(c > r)))
        .collect();
    let metrics = DpoMetrics {
        loss: loss.to_scalar::<f64>()?,
        rewards_chosen: mean(&rc),
        rewards_rejected: mean(&rj),
        rewards_margins: mean(&margins),
        rewards_accuracies: mean(&acc),
        logps_chosen: mean(&v(&pc)?),
        logps_rejected: mean(&v(&pr)?),
    };
    Ok((loss, metrics))
}

/// `log(1 + eˣ)` as `(x + |x|)/2 + log(1 + e^{−|x|})`: no overflow, and the
/// gradient at 0 is ½ whatever subgradient candle picks for `|x|` there
/// (DPO's first step has Δ = 0 exactly).
fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    let a = x.abs()?;
    let relu = ((x + &a)? * 0.5)?;
    relu + a.neg()?.exp()?.affine(1.0, 1.0)?.log()?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn run(
        loss_type: LossType,
        pc: &[f64],
        pr: &[f64],
        rc: &[f64],
        rr: &[f64],
        lens: (&[usize], &[usize]),
    ) -> (f64, Vec<f64>, Vec<f64>, DpoMetrics) {
        let pcv = Var::from_slice(pc, pc.len(), &Device::Cpu).unwrap();
        let prv = Var::from_slice(pr, pr.len(), &Device::Cpu).unwrap();
        let cfg = DpoConfig {
            beta: 0.1,
            loss_type,
        };
        let (loss, m) = dpo_loss(
            &cfg,
            &PairLogps {
                policy_chosen: pcv.as_tensor(),
                policy_rejected: prv.as_tensor(),
                ref_chosen: rc,
                ref_rejected: rr,
                chosen_lens: lens.0,
                rejected_lens: lens.1,
            },
        )
        .unwrap();
        let g = loss.backward().unwrap();
        let gc = g.get(pcv.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        let gr = g.get(prv.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        (loss.to_scalar::<f64>().unwrap(), gc, gr, m)
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Values from the formulas in TRL's `_compute_loss`, worked here in f64.
    #[test]
    fn sigmoid_loss_metrics_and_gradient() {
        let (pc, pr, rc, rr) = (
            [-10.0, -20.0],
            [-12.0, -18.0],
            [-11.0, -19.0],
            [-11.5, -18.5],
        );
        let (loss, gc, gr, m) = run(LossType::Sigmoid, &pc, &pr, &rc, &rr, (&[3, 4], &[5, 6]));
        let d = [
            (-10.0 + 11.0) - (-12.0 + 11.5),
            (-20.0 + 19.0) - (-18.0 + 18.5),
        ];
        let want: f64 = d.iter().map(|d| -sigmoid(0.1 * d).ln()).sum::<f64>() / 2.0;
        assert!((loss - want).abs() < 1e-12, "{loss} vs {want}");
        assert!((m.loss - want).abs() < 1e-12);
        // dL/dπ_c = −β σ(−βΔ) / n
        for (i, d) in d.iter().enumerate() {
            let g = -0.1 * sigmoid(-0.1 * d) / 2.0;
            assert!((gc[i] - g).abs() < 1e-12 && (gr[i] + g).abs() < 1e-12);
        }
        assert!((m.rewards_chosen - 0.1 * (1.0 + -1.0) / 2.0).abs() < 1e-12);
        assert!((m.rewards_rejected - 0.1 * (-0.5 + 0.5) / 2.0).abs() < 1e-12);
        assert!((m.rewards_margins - (m.rewards_chosen - m.rewards_rejected)).abs() < 1e-12);
        assert_eq!(m.rewards_accuracies, 0.5);
        assert_eq!(m.logps_chosen, -15.0);
        assert_eq!(m.logps_rejected, -15.0);
    }

    #[test]
    fn zero_margin_gives_ln2_and_half_slope() {
        let (loss, gc, _, m) = run(
            LossType::Sigmoid,
            &[-3.0],
            &[-4.0],
            &[-3.0],
            &[-4.0],
            (&[1], &[1]),
        );
        assert_eq!(loss, std::f64::consts::LN_2);
        assert_eq!(gc, [-0.05]);
        assert_eq!((m.rewards_chosen, m.rewards_accuracies), (0.0, 0.0));
    }

    #[test]
    fn ipo_averages_the_log_ratios_by_completion_length() {
        let (loss, gc, gr, m) = run(
            LossType::Ipo,
            &[-10.0],
            &[-12.0],
            &[-11.0],
            &[-11.0],
            (&[4], &[2]),
        );
        // chosen ratio 1/4, rejected −1/2: Δ̄ = 0.75; loss = (0.75 − 5)².
        assert!((loss - (0.75f64 - 5.0).powi(2)).abs() < 1e-12);
        assert!((gc[0] - 2.0 * (0.75 - 5.0) / 4.0).abs() < 1e-12);
        assert!((gr[0] + 2.0 * (0.75 - 5.0) / 2.0).abs() < 1e-12);
        // Rewards stay on sums.
        assert!((m.rewards_chosen - 0.1).abs() < 1e-12);
    }

    #[test]
    fn hinge_is_relu_of_one_minus_beta_margin() {
        let (loss, gc, _, _) = run(
            LossType::Hinge,
            &[-1.0, -1.0],
            &[-1.0, -50.0],
            &[-1.0, -1.0],
            &[-1.0, -1.0],
            (&[1, 1], &[1, 1]),
        );
        // Pair 1: Δ = 0 → 1; pair 2: Δ = 49 → relu(1 − 4.9) = 0.
        assert!((loss - 0.5).abs() < 1e-12);
        assert_eq!(gc, [-0.05, 0.0]);
    }

    #[test]
    fn softplus_is_stable_far_out() {
        let x = Tensor::new(&[-800.0f64, 0.0, 800.0], &Device::Cpu).unwrap();
        let y = softplus(&x).unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(y[0], 0.0);
        assert_eq!(y[1], std::f64::consts::LN_2);
        assert_eq!(y[2], 800.0);
    }
}
