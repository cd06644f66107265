//! `forge-host optimize`: an optimizer component (by default the
//! `interviewer`, a second model) rewrites a prompt of the method until the
//! score stops improving, and the gain is proven on data it never saw.
//!
//! The examples are split once by the seed into train (the failures the
//! optimizer is shown), validation (where a candidate is accepted: only
//! when its paired improvement over the incumbent is significant) and test
//! (touched once, at the end: the starting and the best prompt, paired).
//! Every evaluation is an ordinary experiment ([`evaluate`]); every
//! candidate, with the interview that produced it, is a row of the run
//! ([`crate::results::optimization`]), committed with the run's progress,
//! so `kill -9` and the same command continue from the last iteration with
//! the same trajectory (the call cache answers the repeated interview).

pub mod config;
mod evaluate;
pub mod suite;

use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;

pub use config::OptimizeConfig;
use evaluate::{Evaluated, Evaluator};

use crate::components::bindings::proposer;
use crate::components::bindings::types::Score;
use crate::components::budget::Deadline;
use crate::components::capabilities::{CallContext, Capabilities};
use crate::components::seed::derive_seed;
use crate::components::{
    CallOutcome, ConfiguredOptimizer, MetricWorld, OptimizerWorld, PluginHost,
};
use crate::engine::call_cache::CallCache;
use crate::experiment::datasets::Dataset;
use crate::experiment::plan::{self, Paths};
use crate::experiment::progress::Progress;
use crate::results::compare::compare_values;
use crate::results::optimization::{
    Candidate, Decision, Interview, OptimizationRun, OptimizeStatus, Paired, Spend, Splits,
    TestResult,
};
use crate::results::records::RunRecord;
use crate::results::report;
use crate::results::stats::{self, MetricSummary};
use crate::results::store::{self, Store};

/// The splits' file names under `<home>/optimizing/<run>/`.
const TRAIN: &str = "train";
const VALIDATION: &str = "validation";
const TEST: &str = "test";

pub struct Optimized {
    pub run: OptimizationRun,
    pub candidates: Vec<Candidate>,
    /// A completed run of the same config was found (nothing ran).
    pub already: bool,
}

/// What `--dry-run` prints: the splits and the most work the run can do.
pub struct Projection {
    pub splits: (usize, usize, usize),
    /// Example runs of the task model, at most.
    pub example_runs: usize,
    /// Optimizer calls (each may make one or more interviewer model calls).
    pub proposals: usize,
}

pub fn dry_run(cfg: &OptimizeConfig) -> anyhow::Result<Projection> {
    let splits = make_splits(cfg)?;
    let o = &cfg.optimize;
    let (t, v, s) = (
        splits.train.len(),
        splits.validation.len(),
        splits.test.len(),
    );
    let per_candidate = if o.gate { o.failures } else { 0 } + v + t;
    let example_runs = t
        + if o.select_on == VALIDATION { v } else { 0 }
        + o.max_iterations as usize * o.max_candidates as usize * per_candidate
        + 2 * s;
    Ok(Projection {
        splits: (t, v, s),
        example_runs,
        proposals: o.max_iterations as usize * (o.retries as usize + 1),
    })
}

/// Runs (or continues) the optimization `cfg` describes.
pub async fn optimize(
    cfg: &OptimizeConfig,
    paths: &Paths,
    store: &Store,
    new: bool,
    progress: &mut dyn Progress,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Optimized> {
    let previous = store
        .optimizations()?
        .into_iter()
        .rev()
        .find(|r| r.config_sha256 == cfg.sha256);
    let host = PluginHost::new(Some(paths.component_cache()))?;
    let names = metric_names(cfg, &host, paths).await?;
    let metric = match &cfg.optimize.metric {
        Some(m) if !names.contains(m) => {
            return Err(cfg
                .error_at(
                    "optimize.metric",
                    format!(
                        "{m:?} is not a score of the metrics (they give {})",
                        names.join(", ")
                    ),
                )
                .into());
        }
        Some(m) => m.clone(),
        None => names
            .first()
            .cloned()
            .ok_or_else(|| cfg.error_at("metrics", "the metrics declare no score"))?,
    };
    let optimizer: ConfiguredOptimizer = plan::bind::<OptimizerWorld>(
        &cfg.base,
        &host,
        paths,
        "optimize.optimizer",
        &cfg.optimize.optimizer,
    )?;
    let mut run = match previous {
        Some(done) if done.status == OptimizeStatus::Completed && !new => {
            let candidates = store.candidates(&done.id)?;
            return Ok(Optimized {
                run: done,
                candidates,
                already: true,
            });
        }
        Some(mut resumed) if !new => {
            say(format!(
                "continuing {} after iteration {}",
                resumed.id, resumed.iterations_done
            ));
            if resumed.optimizer_sha256 != optimizer.plugin.sha256 {
                say(format!(
                    "warning: the optimizer component {} changed since this run started: the \
                     stored iterations came from the old one (--new starts over)",
                    optimizer.plugin.path.display()
                ));
                resumed.optimizer_sha256 = optimizer.plugin.sha256.clone();
            }
            resumed.status = OptimizeStatus::Running;
            resumed.error = None;
            resumed
        }
        _ => new_run(cfg, &metric, &optimizer)?,
    };
    store.put_optimization(&run)?;
    let mut session = Session {
        cfg,
        store,
        evaluator: Evaluator::new(cfg, paths, store, metric, &run.id)?,
        host,
        optimizer,
        paths,
        interviewer: None,
        started: Instant::now(),
        seconds_before: run.seconds,
    };
    match session.drive(&mut run, progress, say).await {
        Ok(()) => {}
        Err(e) => {
            run.status = OptimizeStatus::Failed;
            run.error = Some(format!("{e:#}"));
            run.seconds = session.seconds();
            run.updated_at = store::now();
            store.put_optimization(&run)?;
            return Err(e);
        }
    }
    let candidates = store.candidates(&run.id)?;
    Ok(Optimized {
        run,
        candidates,
        already: false,
    })
}

/// The score names the config's metrics declare, in order.
async fn metric_names(
    cfg: &OptimizeConfig,
    host: &PluginHost,
    paths: &Paths,
) -> anyhow::Result<Vec<String>> {
    let metrics = cfg
        .base
        .config
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            plan::bind::<MetricWorld>(&cfg.base, host, paths, &format!("metrics[{i}]"), m)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(plan::declared_scores(&cfg.base, host, &metrics).await?.1)
}

/// The pool (the `[dataset]` sample, or every row) shuffled by the seed and
/// cut into train, validation and test.
fn make_splits(cfg: &OptimizeConfig) -> anyhow::Result<Splits> {
    let c = &cfg.base.config;
    let data = Dataset::load(&cfg.base.resolve(&c.dataset.path))?;
    let pool: Vec<String> = data
        .sample_indices(c.dataset.sample, c.dataset.seed.unwrap_or(c.seed))
        .into_iter()
        .map(|i| data.examples[i].id.clone())
        .collect();
    let o = &cfg.optimize;
    let on_train = o.select_on == TRAIN;
    let (t, v, s) = config::split_sizes(&o.splits, pool.len(), !on_train)
        .map_err(|e| cfg.error_at("optimize.splits", e))?;
    let mut shuffled = pool;
    let mut rng = rand::rngs::StdRng::seed_from_u64(derive_seed(c.seed, 0x0057_1175));
    shuffled.shuffle(&mut rng);
    let train = shuffled[..t].to_vec();
    let validation = if on_train {
        train.clone()
    } else {
        shuffled[t..t + v].to_vec()
    };
    let test = shuffled[t + v..t + v + s].to_vec();
    Ok(Splits {
        train,
        validation,
        test,
    })
}

fn new_run(
    cfg: &OptimizeConfig,
    metric: &str,
    optimizer: &ConfiguredOptimizer,
) -> anyhow::Result<OptimizationRun> {
    let c = &cfg.base.config;
    let created_at = store::now();
    let stamp: String = created_at.chars().filter(char::is_ascii_digit).collect();
    let model_name = |m: &crate::experiment::config::ModelConfig| {
        m.model.clone().unwrap_or_else(|| m.source.clone())
    };
    Ok(OptimizationRun {
        id: format!("{}-o{}-{}", c.name, &cfg.sha256[..6], &stamp[8..]),
        name: c.name.clone(),
        status: OptimizeStatus::Running,
        error: None,
        config_path: cfg.path().display().to_string(),
        config_text: cfg.base.text.clone(),
        config_sha256: cfg.sha256.clone(),
        seed: c.seed,
        param: cfg.optimize.param.clone(),
        metric: metric.to_string(),
        placeholders: cfg.placeholders.clone(),
        optimizer: optimizer.plugin.name.clone(),
        optimizer_sha256: optimizer.plugin.sha256.clone(),
        task_model: model_name(&c.model),
        interviewer_model: cfg.optimize.interviewer.as_ref().map_or_else(
            || format!("{} (the task model)", model_name(&c.model)),
            model_name,
        ),
        splits: make_splits(cfg)?,
        start_prompt: cfg.start_prompt.clone(),
        best_prompt: cfg.start_prompt.clone(),
        best_at: (0, 0),
        iterations_done: 0,
        rejections_in_a_row: 0,
        stop_reason: None,
        spend: Spend::default(),
        seconds: 0.0,
        created_at: created_at.clone(),
        updated_at: created_at,
        test: None,
    })
}

struct Session<'a> {
    cfg: &'a OptimizeConfig,
    store: &'a Store,
    evaluator: Evaluator<'a>,
    host: PluginHost,
    optimizer: ConfiguredOptimizer,
    paths: &'a Paths,
    /// The interviewer's capabilities, started at the first interview.
    interviewer: Option<Arc<Capabilities>>,
    started: Instant,
    seconds_before: f64,
}

/// The incumbent: its prompt, validation values and training outcomes.
struct Incumbent {
    prompt: String,
    validation: Evaluated,
    train: Vec<RunRecord>,
    train_values: std::collections::BTreeMap<String, f64>,
}

impl Session<'_> {
    fn seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    fn commit(&self, run: &mut OptimizationRun, rows: &[Candidate]) -> anyhow::Result<()> {
        run.seconds = self.seconds();
        run.updated_at = store::now();
        self.store.record_candidates(run, rows)?;
        Ok(())
    }

    async fn drive(
        &mut self,
        run: &mut OptimizationRun,
        progress: &mut dyn Progress,
        say: &mut dyn FnMut(String),
    ) -> anyhow::Result<()> {
        let o = &self.cfg.optimize;
        let splits = run.splits.clone();
        let validation_split = if o.select_on == TRAIN {
            TRAIN
        } else {
            VALIDATION
        };
        let mut rows = self.store.candidates(&run.id)?;
        if rows.is_empty() {
            say(format!(
                "baseline: the starting prompt on train ({}) and validation ({})",
                splits.train.len(),
                splits.validation.len()
            ));
            let started = Instant::now();
            let train = self
                .evaluator
                .evaluate(
                    &run.start_prompt,
                    TRAIN,
                    &splits.train,
                    "it0-train",
                    progress,
                )
                .await?;
            let val = self
                .evaluator
                .evaluate(
                    &run.start_prompt,
                    validation_split,
                    &splits.validation,
                    "it0-validation",
                    progress,
                )
                .await?;
            let mut spend = train.spend;
            if validation_split != TRAIN {
                spend.add(&val.spend);
            }
            let row = Candidate {
                iteration: 0,
                candidate: 0,
                prompt: run.start_prompt.clone(),
                analysis: String::new(),
                interviews: vec![],
                decision: Decision::Baseline,
                reason: None,
                gate: None,
                gate_experiment: None,
                validation_experiment: Some(val.experiment.id.clone()),
                validation: Some(val.summary.clone()),
                paired: None,
                train_experiment: Some(train.experiment.id.clone()),
                spend,
                seconds: started.elapsed().as_secs_f64(),
            };
            run.spend.add(&spend);
            say(format!(
                "baseline: {} = {}",
                run.metric,
                fmt_summary(&val.summary)
            ));
            self.commit(run, std::slice::from_ref(&row))?;
            rows.push(row);
        }

        let mut incumbent = self.incumbent(run, &rows)?;
        while run.stop_reason.is_none() {
            if let Some(reason) = self.stop_reason(run, &incumbent) {
                run.stop_reason = Some(reason);
                break;
            }
            let it = run.iterations_done + 1;
            let started = Instant::now();
            let (failures, successes) = self.outcomes(run, &incumbent);
            let (proposed, interviews, stop) = self
                .ask(run, &incumbent, &rows, it, &failures, &successes)
                .await?;
            let mut interview_spend = Spend::default();
            for i in &interviews {
                interview_spend.interviewer_calls += i.calls.len() as u64;
                interview_spend.interviewer_tokens += i
                    .calls
                    .iter()
                    .map(|c| u64::from(c.prompt_tokens + c.completion_tokens))
                    .sum::<u64>();
            }
            let mut new_rows: Vec<Candidate> = Vec::new();
            let blank = |k: u32, prompt: String, analysis: String| Candidate {
                iteration: it,
                candidate: k,
                prompt,
                analysis,
                interviews: vec![],
                decision: Decision::Invalid,
                reason: None,
                gate: None,
                gate_experiment: None,
                validation_experiment: None,
                validation: None,
                paired: None,
                train_experiment: None,
                spend: Spend::default(),
                seconds: 0.0,
            };
            let valid = match proposed {
                Ok(valid) => valid,
                Err(refused) => {
                    let mut row = blank(0, refused.0, refused.1);
                    row.reason = Some(refused.2);
                    new_rows.push(row);
                    vec![]
                }
            };
            // Gate, then validation, for each valid candidate.
            let mut validated: Vec<(usize, Evaluated, Paired)> = Vec::new();
            for (k, (prompt, analysis)) in valid.into_iter().enumerate() {
                let k = k as u32;
                let mut row = blank(k, prompt.clone(), analysis);
                let mut spend = Spend::default();
                if o.gate && !failures.is_empty() {
                    let ids: Vec<String> = failures.iter().map(|r| r.example_id.clone()).collect();
                    let name = format!("gate-{}", short_hash(&ids));
                    let g = self
                        .evaluator
                        .evaluate(&prompt, &name, &ids, &format!("it{it}c{k}-gate"), progress)
                        .await?;
                    spend.add(&g.spend);
                    let before: Vec<f64> = ids
                        .iter()
                        .map(|id| incumbent.train_values.get(id).copied().unwrap_or(0.0))
                        .collect();
                    let (now, was) = (g.summary.mean, stats::mean(&before));
                    row.gate = Some((now, was));
                    row.gate_experiment = Some(g.experiment.id.clone());
                    if now <= was {
                        row.decision = Decision::Gated;
                        row.reason = Some(format!(
                            "fixed none of the {} shown failures ({now:.3} vs {was:.3})",
                            ids.len()
                        ));
                    }
                }
                if row.decision != Decision::Gated {
                    let v = self
                        .evaluator
                        .evaluate(
                            &prompt,
                            validation_split,
                            &splits.validation,
                            &format!("it{it}c{k}-validation"),
                            progress,
                        )
                        .await?;
                    spend.add(&v.spend);
                    let a = incumbent.validation.in_order(&splits.validation);
                    let b = v.in_order(&splits.validation);
                    let paired = Paired::from(&compare_values(&run.metric, &a, &b, run.seed));
                    row.validation_experiment = Some(v.experiment.id.clone());
                    row.validation = Some(v.summary.clone());
                    row.paired = Some(paired.clone());
                    row.decision = Decision::Rejected;
                    validated.push((new_rows.len(), v, paired));
                }
                row.spend = spend;
                new_rows.push(row);
            }
            // Accept the best candidate whose gain is significant (Holm
            // across this iteration's candidates).
            let p: Vec<f64> = validated.iter().map(|(_, _, m)| m.p_value).collect();
            let adjusted = stats::holm_adjust(&p);
            // (row, validation mean) of the best significant candidate.
            let mut best: Option<(usize, f64)> = None;
            for (j, (row_i, v, m)) in validated.iter().enumerate() {
                let significant = m.delta > 0.0 && adjusted[j] < o.alpha;
                let row = &mut new_rows[*row_i];
                row.reason = Some(format!(
                    "Δ {:+.3} [{:+.3}, {:+.3}], p {} ({}{})",
                    m.delta,
                    m.delta_ci.0,
                    m.delta_ci.1,
                    report::optimization::fmt_p(m.p_value),
                    m.test,
                    if validated.len() > 1 {
                        format!(", Holm {}", report::optimization::fmt_p(adjusted[j]))
                    } else {
                        String::new()
                    }
                ));
                if significant && best.is_none_or(|(_, mean)| v.summary.mean > mean) {
                    best = Some((*row_i, v.summary.mean));
                }
            }
            if let Some((b, _)) = best {
                let prompt = new_rows[b].prompt.clone();
                let t = self
                    .evaluator
                    .evaluate(
                        &prompt,
                        TRAIN,
                        &splits.train,
                        &format!("it{it}c{b}-train"),
                        progress,
                    )
                    .await?;
                let row = &mut new_rows[b];
                row.spend.add(&t.spend);
                row.decision = Decision::Accepted;
                row.train_experiment = Some(t.experiment.id.clone());
                run.best_prompt = prompt;
                run.best_at = (it, row.candidate);
                run.rejections_in_a_row = 0;
            } else {
                run.rejections_in_a_row += 1;
            }
            new_rows[0].interviews = interviews;
            new_rows[0].spend.add(&interview_spend);
            let seconds = started.elapsed().as_secs_f64();
            for r in &mut new_rows {
                r.seconds = seconds;
                run.spend.add(&r.spend);
            }
            run.iterations_done = it;
            if stop {
                run.stop_reason = Some("no_change".into());
            }
            for r in &new_rows {
                say(describe(r, &run.metric));
            }
            self.commit(run, &new_rows)?;
            rows.extend(new_rows);
            if best.is_some() {
                incumbent = self.incumbent(run, &rows)?;
            }
        }
        say(format!(
            "stopped: {}; test split ({} examples): the starting and the best prompt",
            run.stop_reason.as_deref().unwrap_or("?"),
            splits.test.len()
        ));
        self.commit(run, &[])?;
        let start = self
            .evaluator
            .evaluate(
                &run.start_prompt,
                TEST,
                &splits.test,
                "test-start",
                progress,
            )
            .await?;
        // The starting prompt kept: its test run is the best's too.
        let best = if run.best_prompt == run.start_prompt {
            self.evaluator.stored(&start.experiment.id)?
        } else {
            self.evaluator
                .evaluate(&run.best_prompt, TEST, &splits.test, "test-best", progress)
                .await?
        };
        let m = compare_values(
            &run.metric,
            &start.in_order(&splits.test),
            &best.in_order(&splits.test),
            run.seed,
        );
        let val_of = |at: (u32, u32)| {
            rows.iter()
                .find(|r| (r.iteration, r.candidate) == at)
                .and_then(|r| r.validation.as_ref())
                .map_or(0.0, |s| s.mean)
        };
        run.spend.add(&start.spend);
        if best.experiment.id != start.experiment.id {
            run.spend.add(&best.spend);
        }
        run.test = Some(TestResult {
            start_experiment: start.experiment.id.clone(),
            best_experiment: best.experiment.id.clone(),
            start: start.summary.clone(),
            best: best.summary.clone(),
            paired: Paired::from(&m),
            validation_delta: val_of(run.best_at) - val_of((0, 0)),
        });
        run.status = OptimizeStatus::Completed;
        self.commit(run, &[])?;
        Ok(())
    }

    /// Why the loop should stop before the next iteration, if it should.
    fn stop_reason(&self, run: &OptimizationRun, incumbent: &Incumbent) -> Option<String> {
        let o = &self.cfg.optimize;
        if o.target
            .is_some_and(|t| incumbent.validation.summary.mean >= t)
        {
            return Some("target".into());
        }
        if run.rejections_in_a_row >= o.patience {
            return Some("plateau".into());
        }
        if run.iterations_done >= o.max_iterations {
            return Some("max_iterations".into());
        }
        if o.max_calls.is_some_and(|m| run.spend.calls() >= m) {
            return Some("budget: model calls".into());
        }
        if o.max_tokens.is_some_and(|m| run.spend.tokens() >= m) {
            return Some("budget: tokens".into());
        }
        if o.max_seconds.is_some_and(|m| self.seconds() >= m) {
            return Some("budget: seconds".into());
        }
        None
    }

    fn incumbent(&self, run: &OptimizationRun, rows: &[Candidate]) -> anyhow::Result<Incumbent> {
        let row = rows
            .iter()
            .find(|r| (r.iteration, r.candidate) == run.best_at)
            .ok_or_else(|| anyhow::anyhow!("{}: the incumbent's row is missing", run.id))?;
        let val_id = row.validation_experiment.as_deref().unwrap_or_default();
        let train_id = row.train_experiment.as_deref().unwrap_or_default();
        let validation = self.evaluator.stored(val_id)?;
        let train = self.store.runs(train_id)?;
        let train_values = train
            .iter()
            .map(|r| {
                (
                    r.example_id.clone(),
                    r.score_value(&run.metric).unwrap_or(0.0),
                )
            })
            .collect();
        Ok(Incumbent {
            prompt: row.prompt.clone(),
            validation,
            train,
            train_values,
        })
    }

    /// The incumbent's training failures (lowest scores first) and
    /// successes shown to the optimizer, in a seeded order.
    fn outcomes<'i>(
        &self,
        run: &OptimizationRun,
        incumbent: &'i Incumbent,
    ) -> (Vec<&'i RunRecord>, Vec<&'i RunRecord>) {
        let n = self.cfg.optimize.failures;
        let key = |r: &RunRecord| {
            derive_seed(
                run.seed ^ u64::from(run.iterations_done),
                u64::from_le_bytes(short_hash_bytes(&r.example_id)),
            )
        };
        let value = |r: &RunRecord| {
            incumbent
                .train_values
                .get(&r.example_id)
                .copied()
                .unwrap_or(0.0)
        };
        let mut failures: Vec<&RunRecord> =
            incumbent.train.iter().filter(|r| value(r) < 1.0).collect();
        failures.sort_by(|a, b| value(a).total_cmp(&value(b)).then(key(a).cmp(&key(b))));
        failures.truncate(n);
        let mut successes: Vec<&RunRecord> =
            incumbent.train.iter().filter(|r| value(r) >= 1.0).collect();
        successes.sort_by_key(|r| key(r));
        successes.truncate(self.cfg.optimize.successes);
        (failures, successes)
    }

    /// The interviewer's capabilities: its own engine (the task model's
    /// spec when none is named), the call cache, no stop sequences.
    async fn interviewer(&mut self) -> anyhow::Result<Arc<Capabilities>> {
        if let Some(c) = &self.interviewer {
            return Ok(c.clone());
        }
        let mut config = self.cfg.base.clone();
        if let Some(m) = &self.cfg.optimize.interviewer {
            config.config.model = m.clone();
        }
        let engine = plan::start_engine(&config, self.paths).await.map_err(|e| {
            anyhow::anyhow!("starting the interviewer ([optimize] interviewer): {e:#}")
        })?;
        let mut caps = Capabilities::none();
        let c = Arc::get_mut(&mut caps).expect("fresh");
        c.engine = Some(engine);
        c.generation.max_tokens = 256;
        c.call_cache = match (&self.paths.call_cache, self.cfg.base.config.run.cache) {
            (Some(path), true) => Some(CallCache::open(path)?),
            _ => None,
        };
        self.interviewer = Some(caps.clone());
        Ok(caps)
    }

    /// Asks the optimizer for candidates, again (with feedback) while none
    /// is usable. Ok(valid candidates) or Err((last prompt, analysis,
    /// why)) when no ask gave one; the interviews; whether it proposed no
    /// change at all.
    #[allow(clippy::type_complexity)]
    async fn ask(
        &mut self,
        run: &OptimizationRun,
        incumbent: &Incumbent,
        rows: &[Candidate],
        it: u32,
        failures: &[&RunRecord],
        successes: &[&RunRecord],
    ) -> anyhow::Result<(
        Result<Vec<(String, String)>, (String, String, String)>,
        Vec<Interview>,
        bool,
    )> {
        let o = &self.cfg.optimize;
        let caps = self.interviewer().await?;
        let mut history: Vec<proposer::Tried> = rows
            .iter()
            .filter_map(|r| {
                r.validation.as_ref().map(|v| proposer::Tried {
                    prompt: r.prompt.clone(),
                    score: v.mean,
                    accepted: matches!(r.decision, Decision::Accepted | Decision::Baseline),
                })
            })
            .collect();
        history.sort_by(|a, b| b.score.total_cmp(&a.score));
        history.truncate(5);
        let outcome = |r: &RunRecord| proposer::Outcome {
            question: r.question.clone(),
            references: r.references.clone(),
            answer: r.answer.clone(),
            scores: r
                .scores
                .iter()
                .map(|(name, value)| Score {
                    name: name.clone(),
                    value: *value,
                })
                .collect(),
            error: r
                .error
                .as_ref()
                .map(|e| format!("{}: {}", e.kind, e.message)),
        };
        let mut state = proposer::State {
            iteration: it,
            param: run.param.clone(),
            prompt: incumbent.prompt.clone(),
            start_prompt: run.start_prompt.clone(),
            placeholders: run.placeholders.clone(),
            metric: run.metric.clone(),
            score: incumbent.validation.summary.mean,
            history,
            failures: failures.iter().map(|r| outcome(r)).collect(),
            successes: successes.iter().map(|r| outcome(r)).collect(),
            feedback: None,
        };
        let tried: Vec<&str> = rows.iter().map(|r| r.prompt.as_str()).collect();
        let mut interviews = Vec::new();
        let mut last = (String::new(), String::new(), String::from("no proposal"));
        let mut errors = 0;
        for attempt in 0..=o.retries {
            let seed = derive_seed(run.seed, (u64::from(it) << 8) | u64::from(attempt));
            let deadline = Deadline::after(self.optimizer.sandbox.example_timeout);
            let ctx = CallContext::new(caps.clone(), seed).until(deadline);
            let started = Instant::now();
            let (out, ctx) = self.host.propose(&self.optimizer, seed, ctx, &state).await;
            let mut interview = Interview {
                calls: ctx.calls,
                feedback: state.feedback.clone(),
                proposals: 0,
                error: None,
                seconds: started.elapsed().as_secs_f64(),
            };
            let list = match out {
                CallOutcome::Ok(list) => list,
                CallOutcome::PluginError(e) => {
                    interview.error = Some(e.clone());
                    interviews.push(interview);
                    errors += 1;
                    // `invalid input: …`: the optimizer refused its params.
                    if e.starts_with("invalid input: ") {
                        anyhow::bail!(
                            "{}",
                            self.cfg.error_at(
                                "optimize.optimizer.params",
                                format!("the optimizer refused its params: {e}")
                            )
                        );
                    }
                    last.2 = format!("the optimizer failed: {e}");
                    continue;
                }
                CallOutcome::Failed(f) => {
                    interview.error = Some(f.to_string());
                    interviews.push(interview);
                    errors += 1;
                    last.2 = format!("the optimizer failed: {f}");
                    continue;
                }
            };
            interview.proposals = list.len();
            interviews.push(interview);
            if list.is_empty() && attempt == 0 {
                last.2 = "the optimizer proposed no change".into();
                return Ok((Err(last), interviews, true));
            }
            let mut valid = Vec::new();
            let mut why = Vec::new();
            for c in list {
                let p = c.prompt.trim().to_string();
                let lost = optimizer_kit::missing_placeholders(&p, &run.placeholders);
                if p.is_empty() {
                    why.push("it was empty".to_string());
                } else if !lost.is_empty() {
                    why.push(format!(
                        "it lost {} (keep them exactly as written)",
                        lost.join(", ")
                    ));
                } else if tried.contains(&p.as_str()) || valid.iter().any(|(v, _)| *v == p) {
                    why.push("it was already tried: propose a different prompt".to_string());
                } else {
                    valid.push((p, c.analysis));
                    continue;
                }
                last = (p, c.analysis, why.last().cloned().unwrap_or_default());
            }
            if !valid.is_empty() {
                valid.truncate(o.max_candidates as usize);
                return Ok((Ok(valid), interviews, false));
            }
            state.feedback = Some(why.join("; "));
        }
        if errors > o.retries {
            anyhow::bail!(
                "the optimizer failed on every ask of iteration {it}: {}",
                last.2
            );
        }
        last.2 = format!(
            "no usable proposal after {} asks (last: {})",
            o.retries + 1,
            last.2
        );
        Ok((Err(last), interviews, false))
    }
}

fn short_hash_bytes(s: &str) -> [u8; 8] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(s.as_bytes());
    d[..8].try_into().expect("8 bytes")
}

fn short_hash(ids: &[String]) -> String {
    hex::encode(short_hash_bytes(&ids.join("\n")))
}

fn fmt_summary(s: &MetricSummary) -> String {
    format!(
        "{:.3} [{:.3}, {:.3}] (n={})",
        s.mean, s.ci_low, s.ci_high, s.n
    )
}

/// One line per candidate, as the run goes.
fn describe(r: &Candidate, metric: &str) -> String {
    let val = r
        .validation
        .as_ref()
        .map(|s| format!(", validation {metric} {}", fmt_summary(s)))
        .unwrap_or_default();
    format!(
        "iteration {} candidate {}: {}{val}{}",
        r.iteration,
        r.candidate,
        r.decision,
        r.reason
            .as_deref()
            .map(|s| format!(" — {s}"))
            .unwrap_or_default()
    )
}
