//! A short real DPO run learns: on held-out pairs the loss falls below
//! ln 2 and the reward accuracy rises. Seeded, two threads, so the run is
//! the same every time; a sign error in the loss, a gradient that does not
//! reach the adapter or an optimizer that does not step fails it.

mod common;

use common::{forge, run_ok, write};

#[test]
fn a_short_run_lowers_validation_loss_and_raises_reward_accuracy() {
    if common::default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = common::repo().join("configs/data/hh_harmless.smoke40.jsonl");
    // 39 usable pairs of the first 40 HH-harmless rows: 29 train, 10 held out.
    let config = write(
        tmp.path(),
        "learn.toml",
        &format!(
            "[train]\nmodel = \"smollm2-135m-instruct\"\ndata = {data:?}\nvalidation_fraction = 0.25\n\
             seed = 0\nbeta = 0.1\nlr = 5e-4\nschedule = \"constant\"\nmax_steps = 12\nbatch_size = 2\n\
             max_prompt_tokens = 48\nmax_completion_tokens = 24\neval_every = 12\n\
             [train.lora]\nrank = 8\nalpha = 16\n"
        ),
    );
    let mut cmd = forge(&tmp.path().join("home"));
    cmd.env("RAYON_NUM_THREADS", "2");
    let out = run_ok(cmd.arg("--json").args(["train", "dpo"]).arg(&config));
    let evals: Vec<serde_json::Value> = common::events(&out.stdout)
        .into_iter()
        .filter(|e| e["event"] == "eval")
        .collect();
    assert_eq!(
        evals.len(),
        2,
        "an eval before the first step and after the last"
    );
    let (before, after) = (&evals[0], &evals[1]);
    assert_eq!(before["step"], 0);
    assert_eq!(after["step"], 12);
    let loss = |e: &serde_json::Value| e["loss"].as_f64().unwrap();
    let acc = |e: &serde_json::Value| e["rewards/accuracies"].as_f64().unwrap();
    let margin = |e: &serde_json::Value| e["rewards/margins"].as_f64().unwrap();
    eprintln!(
        "validation: loss {:.4} -> {:.4}, reward accuracy {:.2} -> {:.2}, margin {:.4} -> {:.4}",
        loss(before),
        loss(after),
        acc(before),
        acc(after),
        margin(before),
        margin(after)
    );
    // Before any step the adapter is the identity: loss ln 2, no margin.
    assert!((loss(before) - std::f64::consts::LN_2).abs() < 1e-6);
    assert!(margin(before).abs() < 1e-5);
    assert!(
        loss(after) < std::f64::consts::LN_2 - 0.01,
        "validation loss did not fall: {}",
        loss(after)
    );
    assert!(
        acc(after) >= acc(before) + 0.3,
        "reward accuracy did not rise"
    );
    assert!(
        margin(after) > 0.02,
        "chosen and rejected did not move apart"
    );
}
