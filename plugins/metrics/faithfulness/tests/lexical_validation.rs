//! Lexical faithfulness on the hand-made validation set (tests/pairs.jsonl:
//! 10 answers the context supports, 10 it contradicts or does not mention;
//! the host test `faithfulness_judge` runs the LLM judge on the same set).

use faithfulness::{Params, evaluate};

#[test]
fn lexical_mode_gets_the_validation_pairs_right() {
    let p = Params::parse(r#"{"mode":"lexical"}"#).unwrap();
    let set =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pairs.jsonl")).unwrap();
    let (mut right, mut n) = (0, 0);
    let mut wrong = Vec::new();
    for line in set.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let contexts = vec![v["context"].as_str().unwrap().to_string()];
        let scores = evaluate::<()>(
            &p,
            v["answer"].as_str().unwrap(),
            &contexts,
            |_| unreachable!(),
        )
        .unwrap();
        let faithful = scores[0].1 >= 0.5;
        n += 1;
        if faithful == v["supported"].as_bool().unwrap() {
            right += 1;
        } else {
            wrong.push(v["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(n, 20);
    eprintln!("lexical: {right}/{n} right; wrong: {wrong:?}");
    // Token overlap catches wrong numbers, places and inventions, but not a
    // claim built from the context's own words: "The Nile is the largest
    // river by discharge volume" (u03, 4 of 5 content tokens present, at
    // the 0.8 threshold) and "The Carolina Panthers won Super Bowl 50"
    // (u04, 5 of 6). Measured 18/20 with exactly those two wrong; the
    // assertion allows no further miss.
    assert!(
        right >= 18,
        "lexical mode got {right}/{n}; wrong: {wrong:?}"
    );
}
