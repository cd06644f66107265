//! `f1`: token-overlap F1 between the normalised answer and the best
//! normalised reference, 0..1 (SQuAD v1.1; no params).

squad_text::squad_metric!("f1", squad_text::f1);
