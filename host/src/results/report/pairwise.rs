//! The text view of a judging run's pairwise numbers
//! ([`crate::results::pairwise`]): what `forge-host judge` prints and
//! `show` adds under a judging run's summary.

use crate::results::pairwise::{PairwiseSummary, Rate};

fn pct(r: &Rate) -> String {
    format!(
        "{:>5.1}   [{:.1}, {:.1}]",
        r.value * 100.0,
        r.ci_low * 100.0,
        r.ci_high * 100.0
    )
}

/// `a` and `b` name the two sides (experiment ids).
pub fn pairwise_text(a: &str, b: &str, s: &PairwiseSummary) -> String {
    let parsed = s.pairs - s.parse_failures;
    let mut o = format!("A = {a}\nB = {b}\n");
    o += &format!(
        "{} pairs judged in both orders; {} with both verdicts parsed\n\n",
        s.pairs, parsed
    );
    if parsed == 0 {
        o += &format!(
            "no pair has two parsed verdicts: no rate to report ({} parse failures of {} pairs; see the judge's outputs with `forge-host show <judging run> --trace 0`)\n",
            s.parse_failures, s.pairs
        );
        return o;
    }
    o += &format!(
        "{:<30}{:>5}   {:<16}{:>5}\n",
        "(% of parsed pairs)", "rate", "95% CI", "n"
    );
    o += &format!("{:<30}{}{:>7}\n", "A wins", pct(&s.a_win_rate), s.a_wins);
    o += &format!(
        "{:<30}{}{:>7}\n",
        "ties (incl. order disagreed)",
        pct(&s.tie_rate),
        s.ties
    );
    o += &format!("{:<30}{}{:>7}\n", "B wins", pct(&s.b_win_rate), s.b_wins);
    o += &format!("{:<30}{}\n", "win rate of A (ties ½)", pct(&s.win_rate));
    if let Some(lc) = &s.length_controlled {
        o += &format!(
            "{:<30}{}   (at equal length; A is {:+.1} tokens longer on average)\n",
            "length-controlled win rate",
            pct(lc),
            s.mean_length_diff
        );
    }
    o += &format!(
        "{:<30}{}   (both verdicts chose the same slot: the order decided)\n",
        "position bias",
        pct(&s.position_bias)
    );
    o += &format!(
        "\nsign test   p = {:.4}  ({} wins vs {} losses, exact two-sided binomial; ties left out)\n",
        s.sign_test_p, s.a_wins, s.b_wins
    );
    o += &format!(
        "parse failures  {} of {} pairs ({:.1}%): left out of the rates above\n",
        s.parse_failures,
        s.pairs,
        if s.pairs > 0 {
            100.0 * s.parse_failures as f64 / s.pairs as f64
        } else {
            0.0
        }
    );
    o
}
