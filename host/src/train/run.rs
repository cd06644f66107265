//! One DPO training run: resolve and hash the inputs, tokenise, fill the
//! reference cache, then step, evaluate and checkpoint until the
//! configured number of steps, resuming from the newest checkpoint when
//! the same config runs again; the adapter goes out in PEFT's layout with
//! a model card. The run is recorded in the results store as it goes
//! ([`super::record`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::DType;
use forge_train::batch::Batch;
use forge_train::checkpoint;
use forge_train::dpo::{DpoConfig, PairLogps, dpo_loss};
use forge_train::{
    Adapter, BaseModel, DpoMetrics, Lora, MicroBatch, Model, PreferencePair, RefLogps, Trainer,
    adapter,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::config::TrainConfigFile;
use super::data::{PreferenceData, split};
use super::prompt::{PromptFormat, Truncated};
use super::record::{Recorder, RunFacts, eval_row, peak_rss_bytes, step_row};
use super::reference::ReferenceCache;
use crate::engine::model_source::{self, ResolvedModel};
use crate::results::store::Store;
use crate::results::training::{TrainingRun, TruncatedCounts};

pub struct TrainOptions<'a> {
    pub home: &'a Path,
    pub models_dir: &'a Path,
    /// One JSON event per line on stdout instead of the progress bar.
    pub json: bool,
    /// Where the run is recorded (`forge-host list`, `show`, `report`).
    pub store: &'a Store,
}

/// What a finished run did.
#[derive(Debug)]
pub struct Outcome {
    pub run_id: String,
    pub output: PathBuf,
    pub steps: u64,
    pub resumed_from: Option<u64>,
    pub reference_computed: usize,
    pub reference_cached: usize,
    pub validation: Option<DpoMetrics>,
    pub seconds: f64,
    /// The stored record as this attempt left it.
    pub record: TrainingRun,
}

/// Events for people (stderr, a bar) or machines (stdout, JSON lines).
struct Events {
    json: bool,
    bar: ProgressBar,
}

impl Events {
    fn say(&self, event: serde_json::Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{event}");
        } else {
            let line = human();
            self.bar.suspend(|| eprintln!("{line}"));
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The checkpoints under `root` with their steps, newest first.
fn checkpoints_newest_first(root: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let step = name.strip_prefix("checkpoint-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort_by_key(|c| std::cmp::Reverse(c.0));
    found
}

/// Validation metrics of the adapter (eval mode, no dropout) against the
/// cached reference, means over pairs.
fn evaluate(
    model: &Model,
    dpo: &DpoConfig,
    pairs: &[PreferencePair],
    reference: &[RefLogps],
    batch_size: usize,
) -> anyhow::Result<DpoMetrics> {
    let mut per_pair = Vec::with_capacity(pairs.len());
    for (p, r) in pairs.chunks(batch_size).zip(reference.chunks(batch_size)) {
        let n = p.len();
        let rows: Vec<(&[u32], &[u32])> = p
            .iter()
            .map(|x| (&x.prompt[..], &x.chosen[..]))
            .chain(p.iter().map(|x| (&x.prompt[..], &x.rejected[..])))
            .collect();
        let batch = Batch::new(&rows)?;
        let sums = model.sequence_logps(&batch, Adapter::On)?.sums.detach();
        let lens = batch.completion_lens();
        let rc: Vec<f64> = r.iter().map(|x| x.chosen).collect();
        let rr: Vec<f64> = r.iter().map(|x| x.rejected).collect();
        let (_, m) = dpo_loss(
            dpo,
            &PairLogps {
                policy_chosen: &sums.narrow(0, 0, n)?,
                policy_rejected: &sums.narrow(0, n, n)?,
                ref_chosen: &rc,
                ref_rejected: &rr,
                chosen_lens: &lens[..n],
                rejected_lens: &lens[n..],
            },
        )?;
        // Weighted by pairs: a short last chunk counts for what it holds.
        per_pair.extend(std::iter::repeat_n(m, n));
    }
    Ok(DpoMetrics::mean(&per_pair))
}

fn metrics_json(m: &DpoMetrics) -> serde_json::Map<String, serde_json::Value> {
    m.trl_names()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

/// A run's inputs resolved, hashed and tokenised, its id known; nothing
/// trained yet (a sweep looks its cell up in the store from here).
pub struct Prepared {
    pub cfg: TrainConfigFile,
    pub model: ResolvedModel,
    pub data: PreferenceData,
    pub train_pairs: Vec<PreferencePair>,
    pub val_pairs: Vec<PreferencePair>,
    pub truncated: Truncated,
    pub total_steps: u64,
    pub config_sha256: String,
    /// sha256(config sha256, model sha256, data sha256)[..12].
    pub run_id: String,
    pub output: PathBuf,
}

impl Prepared {
    pub fn new(cfg: TrainConfigFile, home: &Path, models_dir: &Path) -> anyhow::Result<Self> {
        let t = &cfg.train;
        let model = model_source::resolve(&t.model, models_dir)
            .map_err(|e| cfg.error_at("train.model", e.to_string()))?;
        if model.path.extension().and_then(|e| e.to_str()) != Some("gguf") {
            return Err(cfg
                .error_at(
                    "train.model",
                    "training needs a llama GGUF file (a packaged alias or a .gguf path)",
                )
                .into());
        }
        let data = PreferenceData::load(&cfg.resolve(&t.data))?;
        let format = PromptFormat::from_gguf(&model.path)?;
        let (encoded, truncated) =
            format.encode_all(&data, t.max_prompt_tokens, t.max_completion_tokens)?;
        let (mut train_idx, val_idx) = split(encoded.len(), t.validation_fraction, t.seed);
        if let Some(n) = t.limit_pairs {
            train_idx.truncate(n);
        }
        let train_pairs: Vec<PreferencePair> =
            train_idx.iter().map(|&i| encoded[i].pair.clone()).collect();
        let val_pairs: Vec<PreferencePair> =
            val_idx.iter().map(|&i| encoded[i].pair.clone()).collect();
        let total_steps = cfg.total_steps(train_pairs.len());
        let config_sha256 = sha256_hex(cfg.text.as_bytes());
        let run_id =
            sha256_hex(format!("{config_sha256}\n{}\n{}", model.sha256, data.sha256).as_bytes())
                [..12]
                .to_string();
        let output = match &t.output {
            Some(o) => cfg.resolve(o),
            None => home.join("adapters").join(&run_id),
        };
        Ok(Self {
            cfg,
            model,
            data,
            train_pairs,
            val_pairs,
            truncated,
            total_steps,
            config_sha256,
            run_id,
            output,
        })
    }

    fn facts(&self) -> anyhow::Result<RunFacts<'_>> {
        let mut hyperparameters = serde_json::to_value(&self.cfg.train)?;
        hyperparameters["total_steps"] = json!(self.total_steps);
        Ok(RunFacts {
            run_id: &self.run_id,
            config_path: self.cfg.path.display().to_string(),
            config_text: &self.cfg.text,
            config_sha256: &self.config_sha256,
            model: &self.model.source,
            model_sha256: &self.model.sha256,
            data_path: self.data.path.display().to_string(),
            data_sha256: &self.data.sha256,
            hyperparameters,
            train_pairs: self.train_pairs.len(),
            validation_pairs: self.val_pairs.len(),
            skipped_empty: self.data.skipped_empty,
            truncated: TruncatedCounts {
                prompts: self.truncated.prompts,
                chosen: self.truncated.chosen,
                rejected: self.truncated.rejected,
            },
            total_steps: self.total_steps,
            output: self.output.display().to_string(),
        })
    }
}

/// Trains (or resumes) what the config at `config_path` describes.
pub fn train(config_path: &Path, opts: &TrainOptions) -> anyhow::Result<Outcome> {
    let cfg = TrainConfigFile::load(config_path)?;
    train_prepared(Prepared::new(cfg, opts.home, opts.models_dir)?, opts)
}

/// Trains a prepared run, recording it; a run that fails is stored as
/// failed with the reason.
pub fn train_prepared(p: Prepared, opts: &TrainOptions) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut recorder = Recorder::start(opts.store, p.facts()?)?;
    match execute(&p, opts, &mut recorder, started) {
        Ok(out) => Ok(out),
        Err(e) => {
            recorder.failed(&e);
            Err(e)
        }
    }
}

fn execute(
    p: &Prepared,
    opts: &TrainOptions,
    recorder: &mut Recorder,
    started: Instant,
) -> anyhow::Result<Outcome> {
    let (cfg, model, data, t) = (&p.cfg, &p.model, &p.data, &p.cfg.train);
    let (train_pairs, val_pairs, truncated) = (&p.train_pairs, &p.val_pairs, &p.truncated);
    let (total_steps, run_id, output) = (p.total_steps, &p.run_id, &p.output);
    let config_sha256 = &p.config_sha256;
    let train_config = cfg.train_config(total_steps);
    let run_dir = opts.home.join("train").join(run_id);
    let ckpt_root = run_dir.join("checkpoints");
    let bar = if opts.json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(total_steps), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} step {pos}/{len} [{elapsed_precise} < {eta}] {msg}",
            )
            .expect("valid template"),
        );
        bar
    };
    let events = Events {
        json: opts.json,
        bar,
    };
    events.say(
        json!({"event": "start", "run": run_id, "model": model.source, "model_sha256": model.sha256,
               "data": data.path, "data_sha256": data.sha256, "config_sha256": config_sha256,
               "train_pairs": train_pairs.len(), "validation_pairs": val_pairs.len(),
               "skipped_empty": data.skipped_empty, "truncated": truncated,
               "total_steps": total_steps, "output": output}),
        || {
            format!(
                "training run {run_id}: {} train / {} validation pairs ({} skipped with an empty side; truncated: {} prompts, {} chosen, {} rejected), {total_steps} steps",
                train_pairs.len(),
                val_pairs.len(),
                data.skipped_empty,
                truncated.prompts,
                truncated.chosen,
                truncated.rejected
            )
        },
    );

    // The trainer: from the newest checkpoint that loads, else fresh.
    let mut resumed = None;
    let mut trainer = None;
    for (step, dir) in checkpoints_newest_first(&ckpt_root) {
        let base = BaseModel::from_gguf(&model.path)?;
        match Trainer::resume(base, &dir, train_config.clone()) {
            Ok((tr, state)) => {
                resumed = Some((step, state.data_position));
                trainer = Some(tr);
                break;
            }
            Err(e) => events.say(
                json!({"event": "warning", "message": format!("{}: {e}", dir.display())}),
                || format!("warning: skipping checkpoint {}: {e}", dir.display()),
            ),
        }
    }
    let mut trainer = match trainer {
        Some(tr) => tr,
        None => {
            let base = BaseModel::from_gguf(&model.path)?;
            let lora = Lora::init(base.config(), cfg.lora_config(), t.seed, DType::F32)?;
            Trainer::new(Model::new(base, lora)?, train_config.clone(), t.seed)?
        }
    };
    if let Some((step, _)) = resumed {
        events.say(json!({"event": "resume", "step": step}), || {
            format!("resuming from checkpoint-{step}")
        });
    }

    // Reference log-probs: once per (model, pair), then from the cache.
    let cache = ReferenceCache::open(&opts.home.join("cache").join("train_reference.redb"))?;
    let all_pairs: Vec<PreferencePair> = train_pairs.iter().chain(val_pairs).cloned().collect();
    let (all_ref, computed) = cache.fill(trainer.model(), &model.sha256, &all_pairs, |_, _| {})?;
    let cached = all_pairs.len() - computed;
    events.say(
        json!({"event": "reference", "computed": computed, "cached": cached}),
        || {
            if computed == 0 {
                format!(
                    "reference log-probs: all {cached} read from the cache (no reference forward)"
                )
            } else {
                format!("reference log-probs: {computed} computed, {cached} read from the cache")
            }
        },
    );
    recorder.attempt(resumed.map(|r| r.0), computed, cached)?;
    let (train_ref, val_ref) = all_ref.split_at(train_pairs.len());
    events.bar.set_position(trainer.steps());

    // Data order: epoch e is the training pairs shuffled by (seed, e).
    let n = train_pairs.len();
    let mut epoch_order: (u64, Vec<usize>) = (u64::MAX, Vec::new());
    let mut pair_at = |k: u64| -> usize {
        let epoch = k / n as u64;
        if epoch_order.0 != epoch {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut StdRng::seed_from_u64(
                t.seed ^ epoch.wrapping_mul(0x9E37_79B9),
            ));
            epoch_order = (epoch, order);
        }
        epoch_order.1[(k % n as u64) as usize]
    };
    let per_step = (t.batch_size * t.grad_accum) as u64;
    let mut position = resumed.map_or(0, |r| r.1);

    run_steps(
        Loop {
            cfg,
            events,
            recorder,
            trainer: &mut trainer,
            train_pairs,
            train_ref,
            val_pairs,
            val_ref,
            pair_at: &mut pair_at,
            per_step,
            position: &mut position,
            total_steps,
            ckpt_root: &ckpt_root,
            output,
            model_source: &model.source,
            model_sha256: &model.sha256,
            data,
            run_id,
        },
        resumed.map(|r| r.0),
        (computed, cached),
        started,
    )
}

struct Loop<'a, 's> {
    cfg: &'a TrainConfigFile,
    events: Events,
    recorder: &'a mut Recorder<'s>,
    trainer: &'a mut Trainer,
    train_pairs: &'a [PreferencePair],
    train_ref: &'a [RefLogps],
    val_pairs: &'a [PreferencePair],
    val_ref: &'a [RefLogps],
    pair_at: &'a mut dyn FnMut(u64) -> usize,
    per_step: u64,
    position: &'a mut u64,
    total_steps: u64,
    ckpt_root: &'a Path,
    output: &'a Path,
    model_source: &'a str,
    model_sha256: &'a str,
    data: &'a PreferenceData,
    run_id: &'a str,
}

fn run_steps(
    l: Loop,
    resumed_from: Option<u64>,
    (computed, cached): (usize, usize),
    started: Instant,
) -> anyhow::Result<Outcome> {
    let t = &l.cfg.train;
    let dpo = l.trainer.config().dpo.clone();
    // Each pass is committed to the store before its event is printed.
    let eval = |trainer: &Trainer,
                events: &Events,
                recorder: &mut Recorder|
     -> anyhow::Result<Option<DpoMetrics>> {
        if l.val_pairs.is_empty() {
            return Ok(None);
        }
        let m = evaluate(trainer.model(), &dpo, l.val_pairs, l.val_ref, t.batch_size)?;
        let step = trainer.steps();
        recorder.eval(eval_row(step, &m))?;
        let mut ev = metrics_json(&m);
        ev.insert("event".into(), json!("eval"));
        ev.insert("step".into(), json!(step));
        events.say(serde_json::Value::Object(ev), || {
            format!(
                "eval at step {step}: loss {:.4}, rewards/accuracies {:.3}, rewards/margins {:.4}",
                m.loss, m.rewards_accuracies, m.rewards_margins
            )
        });
        Ok(Some(m))
    };
    let mut last_eval = None;
    if t.eval_every > 0 && l.trainer.steps() == 0 {
        last_eval = eval(l.trainer, &l.events, l.recorder)?;
    }
    while l.trainer.steps() < l.total_steps {
        let idx: Vec<usize> = (0..l.per_step)
            .map(|j| (l.pair_at)(*l.position + j))
            .collect();
        let pairs: Vec<PreferencePair> = idx.iter().map(|&i| l.train_pairs[i].clone()).collect();
        let refs: Vec<RefLogps> = idx.iter().map(|&i| l.train_ref[i]).collect();
        let micro: Vec<MicroBatch> = pairs
            .chunks(t.batch_size)
            .zip(refs.chunks(t.batch_size))
            .map(|(p, r)| MicroBatch {
                pairs: p,
                reference: Some(r),
            })
            .collect();
        let m = l
            .trainer
            .step(&micro)
            .with_context(|| format!("step {}", l.trainer.steps() + 1))?;
        *l.position += l.per_step;
        // Stored before it is printed: an event seen is an event kept.
        let row = step_row(&m);
        l.recorder.step(&row)?;
        let mut ev: serde_json::Map<String, serde_json::Value> = row
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        ev.insert("event".into(), json!("step"));
        ev.insert("step".into(), json!(row.step));
        ev.insert("tokens_per_second".into(), json!(row.tokens_per_second));
        if l.events.json {
            println!("{}", serde_json::Value::Object(ev));
        } else {
            l.events.bar.set_message(format!(
                "loss {:.4}  acc {:.2}  {:.0} tok/s",
                m.dpo.loss,
                m.dpo.rewards_accuracies,
                m.tokens_per_second()
            ));
            l.events.bar.set_position(m.step);
        }
        if t.eval_every > 0 && m.step % t.eval_every == 0 {
            last_eval = eval(l.trainer, &l.events, l.recorder)?;
        }
        if t.checkpoint_every > 0 && m.step % t.checkpoint_every == 0 {
            let dir = checkpoint::dir_for_step(l.ckpt_root, m.step);
            l.trainer
                .save_checkpoint(&dir, l.model_source, *l.position)
                .with_context(|| format!("saving {}", dir.display()))?;
            l.events.say(
                json!({"event": "checkpoint", "step": m.step, "dir": dir}),
                || format!("checkpoint {}", dir.display()),
            );
        }
    }
    l.events.bar.finish_and_clear();
    let ran_eval_last = t.eval_every > 0 && l.trainer.steps().is_multiple_of(t.eval_every);
    if !ran_eval_last || last_eval.is_none() {
        last_eval = eval(l.trainer, &l.events, l.recorder)?;
    }
    let model = l.trainer.model();
    adapter::save_peft(l.output, model.lora(), model.config(), l.model_source)
        .with_context(|| format!("writing the adapter to {}", l.output.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::write(
        l.output.join("README.md"),
        model_card(&l, last_eval.as_ref(), seconds),
    )
    .with_context(|| format!("writing {}", l.output.join("README.md").display()))?;
    if l.trainer.steps() != l.total_steps {
        bail!("stopped at step {} of {}", l.trainer.steps(), l.total_steps);
    }
    l.recorder.done()?;
    l.events.say(
        json!({"event": "done", "run": l.run_id, "steps": l.trainer.steps(), "output": l.output,
               "seconds": seconds, "peak_rss_bytes": peak_rss_bytes(),
               "validation": last_eval.as_ref().map(metrics_json)}),
        || {
            format!(
                "done: {} steps in {seconds:.1} s, adapter in {}",
                l.trainer.steps(),
                l.output.display()
            )
        },
    );
    Ok(Outcome {
        run_id: l.run_id.to_string(),
        output: l.output.to_path_buf(),
        steps: l.trainer.steps(),
        resumed_from,
        reference_computed: computed,
        reference_cached: cached,
        validation: last_eval,
        seconds,
        record: l.recorder.run().clone(),
    })
}

fn model_card(l: &Loop, validation: Option<&DpoMetrics>, seconds: f64) -> String {
    let t = &l.cfg.train;
    let mut s = String::new();
    s.push_str("---\nlibrary_name: peft\ntags: [dpo, lora, forge]\n---\n\n");
    s.push_str(&format!("# DPO LoRA adapter ({})\n\n", l.run_id));
    s.push_str(&format!(
        "- base model: `{}` (sha256 `{}`)\n",
        l.model_source, l.model_sha256
    ));
    s.push_str(&format!(
        "- data: `{}` (sha256 `{}`), {} training pairs, {} validation pairs\n",
        l.data.path.display(),
        l.data.sha256,
        l.train_pairs.len(),
        l.val_pairs.len()
    ));
    s.push_str(&format!(
        "- steps: {}, wall time {seconds:.1} s\n\n",
        l.trainer.steps()
    ));
    s.push_str("## Config\n\n```toml\n");
    s.push_str(&l.cfg.text);
    s.push_str("\n```\n\n");
    s.push_str(&format!(
        "Loss `{:?}`, beta {}, lr {} ({:?}, {} warm-up steps), batch {} x {} accumulation, LoRA r {} alpha {} dropout {} on {}.\n\n",
        t.loss, t.beta, t.lr, t.schedule, t.warmup_steps, t.batch_size, t.grad_accum,
        t.lora.rank, t.lora.alpha, t.lora.dropout, t.lora.target_modules.join(", ")
    ));
    if let Some(m) = validation {
        s.push_str("## Final validation metrics\n\n| metric | value |\n|---|---|\n");
        for (k, v) in m.trl_names() {
            s.push_str(&format!("| {k} | {v:.6} |\n"));
        }
    }
    s
}
