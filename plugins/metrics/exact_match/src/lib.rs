//! `exact_match`: 1 when the normalised answer equals a normalised reference,
//! else 0 (SQuAD v1.1 normalisation, max over references; no params).

squad_text::squad_metric!("exact_match", |p: &str, t: &str| f64::from(u8::from(
    squad_text::exact_match(p, t)
)));
