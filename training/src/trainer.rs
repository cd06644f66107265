//! One DPO optimizer step with gradient accumulation, as TRL's
//! `DPOTrainer` on Hugging Face's `Trainer` takes it: each micro-batch's
//! loss is scaled by 1/(number of micro-batches) and its gradients summed,
//! the sum is clipped by global norm, the optimizer steps once at the
//! schedule's rate, and the logged metrics are means over micro-batches.

use std::path::Path;
use std::time::Instant;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::base::BaseModel;
use crate::batch::Batch;
use crate::checkpoint::{self, TrainerState};
use crate::dpo::{DpoConfig, DpoMetrics, PairLogps, dpo_loss};
use crate::error::{Result, TrainError};
use crate::model::{Adapter, Model};
use crate::optim::{AdamW, AdamWConfig, clip_grad_norm, global_norm, zeros_like};
use crate::rng::TrainRng;
use crate::schedule::Schedule;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub dpo: DpoConfig,
    pub optimizer: AdamWConfig,
    pub schedule: Schedule,
    /// Hugging Face's `max_grad_norm` (`None`: no clipping; the norm is
    /// still measured and reported).
    pub max_grad_norm: Option<f64>,
}

/// One preference pair as token ids (the chat template already applied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferencePair {
    pub prompt: Vec<u32>,
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
}

/// The reference model's summed completion log-probabilities of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefLogps {
    pub chosen: f64,
    pub rejected: f64,
}

/// The pairs of one forward/backward pass, with their reference
/// log-probabilities if the caller has them (else they are computed with
/// the adapter off, on the same padded batch).
#[derive(Clone, Copy, Debug)]
pub struct MicroBatch<'a> {
    pub pairs: &'a [PreferencePair],
    pub reference: Option<&'a [RefLogps]>,
}

/// What one step did: TRL's metrics plus throughput.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Optimizer steps taken, this one included (TRL's `global_step`).
    pub step: u64,
    pub dpo: DpoMetrics,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// The rate this step's update used.
    pub learning_rate: f64,
    pub pairs: usize,
    /// Real tokens through the policy forward (prompt + completion, chosen
    /// and rejected).
    pub tokens: usize,
    pub seconds: f64,
}

impl StepMetrics {
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds
    }

    pub fn pairs_per_second(&self) -> f64 {
        self.pairs as f64 / self.seconds
    }

    /// Under TRL's log keys.
    pub fn trl_log(&self) -> Vec<(&'static str, f64)> {
        let mut v = self.dpo.trl_names().to_vec();
        v.push(("grad_norm", self.grad_norm));
        v.push(("learning_rate", self.learning_rate));
        v
    }
}

pub struct Trainer {
    model: Model,
    optimizer: AdamW,
    config: TrainConfig,
    rng: TrainRng,
}

/// Rows `0..n` the chosen completions, `n..2n` the rejected (TRL's order).
fn pair_batch(pairs: &[PreferencePair]) -> Result<Batch> {
    let rows: Vec<(&[u32], &[u32])> = pairs
        .iter()
        .map(|p| (&p.prompt[..], &p.chosen[..]))
        .chain(pairs.iter().map(|p| (&p.prompt[..], &p.rejected[..])))
        .collect();
    Batch::new(&rows)
}

impl Trainer {
    /// A fresh optimizer for `model`'s adapter; `seed` drives LoRA dropout.
    pub fn new(model: Model, config: TrainConfig, seed: u64) -> Result<Self> {
        let optimizer = AdamW::new(config.optimizer, &model.lora().params())?;
        Ok(Self {
            model,
            optimizer,
            config,
            rng: TrainRng::new(seed),
        })
    }

    /// Continues from a checkpoint directory; returns the trainer and the
    /// stored state (its `data_position` says where the data resumes).
    pub fn resume(
        base: BaseModel,
        dir: &Path,
        config: TrainConfig,
    ) -> Result<(Self, TrainerState)> {
        let ck = checkpoint::load(dir, base.config(), base.dtype())?;
        if ck.optimizer.config() != &config.optimizer {
            return Err(TrainError::Config(format!(
                "{}: optimizer settings {:?} differ from the configured {:?}",
                dir.display(),
                ck.optimizer.config(),
                config.optimizer
            )));
        }
        let model = Model::new(base, ck.lora)?;
        Ok((
            Self {
                model,
                optimizer: ck.optimizer,
                config,
                rng: ck.state.rng,
            },
            ck.state,
        ))
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    pub fn optimizer(&self) -> &AdamW {
        &self.optimizer
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.optimizer.steps()
    }

    pub fn rng(&self) -> TrainRng {
        self.rng
    }

    /// Reference log-probabilities of `pairs` (adapter off), in one padded
    /// batch: what the host computes once and caches.
    pub fn reference_logps(model: &Model, pairs: &[PreferencePair]) -> Result<Vec<RefLogps>> {
        let sums = model
            .sequence_logps(&pair_batch(pairs)?, Adapter::Off)?
            .sums_f64()?;
        let n = pairs.len();
        Ok((0..n)
            .map(|i| RefLogps {
                chosen: sums[i],
                rejected: sums[n + i],
            })
            .collect())
    }

    /// One optimizer step over `micro_batches` (gradient accumulation =
    /// their number).
    pub fn step(&mut self, micro_batches: &[MicroBatch]) -> Result<StepMetrics> {
        if micro_batches.is_empty() || micro_batches.iter().any(|m| m.pairs.is_empty()) {
            return Err(TrainError::Batch(
                "a step needs non-empty micro-batches".into(),
            ));
        }
        let start = Instant::now();
        let params = self.model.lora().params();
        let mut acc = zeros_like(&params)?;
        let scale = 1.0 / micro_batches.len() as f64;
        let (mut metrics, mut tokens, mut pairs) = (Vec::new(), 0, 0);
        for mb in micro_batches {
            let n = mb.pairs.len();
            let batch = pair_batch(mb.pairs)?;
            let reference = match mb.reference {
                Some(r) if r.len() == n => r.to_vec(),
                Some(r) => {
                    return Err(TrainError::Batch(format!(
                        "{} reference log-probs for {n} pairs",
                        r.len()
                    )));
                }
                None => {
                    let s = self
                        .model
                        .sequence_logps(&batch, Adapter::Off)?
                        .sums_f64()?;
                    (0..n)
                        .map(|i| RefLogps {
                            chosen: s[i],
                            rejected: s[n + i],
                        })
                        .collect()
                }
            };
            let key = self.rng.next_key();
            let lp = self
                .model
                .sequence_logps(&batch, Adapter::Train { dropout_key: key })?;
            let ref_c: Vec<f64> = reference.iter().map(|r| r.chosen).collect();
            let ref_r: Vec<f64> = reference.iter().map(|r| r.rejected).collect();
            let lens = batch.completion_lens();
            let (loss, m) = dpo_loss(
                &self.config.dpo,
                &PairLogps {
                    policy_chosen: &lp.sums.narrow(0, 0, n)?,
                    policy_rejected: &lp.sums.narrow(0, n, n)?,
                    ref_chosen: &ref_c,
                    ref_rejected: &ref_r,
                    chosen_lens: &lens[..n],
                    rejected_lens: &lens[n..],
                },
            )?;
            let grads = self.model.backward(&loss.affine(scale, 0.0)?)?;
            for (a, g) in acc.iter_mut().zip(grads) {
                *a = (&*a + g.to_dtype(a.dtype())?)?;
            }
            metrics.push(m);
            tokens += batch.tokens();
            pairs += n;
        }
        let grad_norm = match self.config.max_grad_norm {
            Some(max) if max > 0.0 => clip_grad_norm(&mut acc, max)?,
            _ => global_norm(&acc)?,
        };
        if !grad_norm.is_finite() {
            return Err(TrainError::Model(format!(
                "gradient norm is {grad_norm} at step {}: the adapter was not updated",
                self.steps() + 1
            )));
        }
        let learning_rate = self.config.schedule.lr(self.optimizer.steps());
        self.optimizer.step(&params, &acc, learning_rate)?;
        Ok(StepMetrics {
            step: self.optimizer.steps(),
            dpo: DpoMetrics::mean(&metrics),
            grad_norm,
            learning_rate,
            pairs,
            tokens,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Gradients of one micro-batch's (unscaled) loss, for tests and
    /// diagnostics: nothing is updated.
    pub fn gradients(&mut self, mb: MicroBatch) -> Result<(Vec<Tensor>, DpoMetrics)> {
        let saved = self.rng;
        let n = mb.pairs.len();
        let batch = pair_batch(mb.pairs)?;
        let reference = match mb.reference {
            Some(r) => r.to_vec(),
            None => Self::reference_logps(&self.model, mb.pairs)?,
        };
        let lp = self.model.sequence_logps(
            &batch,
            Adapter::Train {
                dropout_key: self.rng.next_key(),
            },
        )?;
        self.rng = saved;
        let lens = batch.completion_lens();
        let (loss, m) = dpo_loss(
            &self.config.dpo,
            &PairLogps {
                policy_chosen: &lp.sums.narrow(0, 0, n)?,
                policy_rejected: &lp.sums.narrow(0, n, n)?,
                ref_chosen: &reference.iter().map(|r| r.chosen).collect::<Vec<_>>(),
                ref_rejected: &reference.iter().map(|r| r.rejected).collect::<Vec<_>>(),
                chosen_lens: &lens[..n],
                rejected_lens: &lens[n..],
            },
        )?;
        Ok((self.model.backward(&loss)?, m))
    }

    /// Writes a checkpoint (adapter, optimizer, RNG, step, `data_position`).
    pub fn save_checkpoint(
        &self,
        dir: &Path,
        base_model_name_or_path: &str,
        data_position: u64,
    ) -> Result<()> {
        checkpoint::save(
            dir,
            self.model.lora(),
            self.model.config(),
            base_model_name_or_path,
            &self.optimizer,
            &TrainerState {
                step: self.steps(),
                data_position,
                rng: self.rng,
            },
        )
    }
}
