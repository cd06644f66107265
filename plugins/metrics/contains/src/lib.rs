//! `contains`: 1 when a normalised reference appears, as whole tokens, inside
//! the normalised answer (lenient accuracy for chatty models); no params.

squad_text::squad_metric!("contains", |p: &str, t: &str| f64::from(u8::from(
    squad_text::contains(p, t)
)));
