//! EM and F1 against the official SQuAD v1.1 definition, re-stated in
//! Python (scripts/oracles/squad_v1_oracle.py) and run now on predictions
//! built from the shared SQuAD sample's references: every case must agree.

use std::path::Path;
use std::process::Command;

#[test]
fn em_and_f1_equal_the_official_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let data = root.join("../shared/data/squad.dev200.jsonl");
    assert!(data.is_file(), "missing {}", data.display());
    let out = Command::new("python3")
        .arg(root.join("scripts/oracles/squad_v1_oracle.py"))
        .arg(&data)
        .output()
        .expect("python3 runs the oracle (it is part of the test set-up)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut n = 0;
    let (mut em_sum, mut f1_sum) = (0.0, 0.0);
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let c: serde_json::Value = serde_json::from_str(line).unwrap();
        let pred = c["prediction"].as_str().unwrap();
        let refs: Vec<String> = c["references"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        let em = squad_text::best(pred, &refs, |p, t| f64::from(squad_text::exact_match(p, t)));
        let f1 = squad_text::best(pred, &refs, squad_text::f1);
        assert_eq!(em, c["exact_match"].as_f64().unwrap(), "EM of {c}");
        assert!(
            (f1 - c["f1"].as_f64().unwrap()).abs() < 1e-12,
            "F1 {f1} of {c}"
        );
        em_sum += em;
        f1_sum += f1;
        n += 1;
    }
    assert!(n > 200, "the oracle produced {n} cases");
    // The corpus-level numbers the script prints (100 × mean) agree too.
    eprintln!(
        "{n} cases: EM {:.2} F1 {:.2}",
        100.0 * em_sum / n as f64,
        100.0 * f1_sum / n as f64
    );
}
