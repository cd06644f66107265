//! What forge's prompt optimizers and the host share, as plain Rust (no
//! WIT), unit-tested natively: the interviewer's instructions template (the
//! default, the check of its placeholders, rendering), reading a proposal
//! out of the interviewer's reply, and the placeholder rule every candidate
//! prompt must keep (`missing_placeholders`), which the host applies to
//! every optimizer's proposals.

pub mod rng;

/// The interviewer's default instructions. `{prompt}` and `{failures}` are
/// required; `{metric}`, `{score}`, `{history}`, `{placeholders}`,
/// `{successes}` and `{feedback}` are optional. Filled in one pass, so a
/// `{question}` inside a filled value stays as written.
pub const DEFAULT_INSTRUCTIONS: &str = "\
You improve prompts for a language model. For every question, the model is given the PROMPT below, with {placeholders} replaced by the question.

PROMPT:
{prompt}

This prompt scores {score} on {metric} (1 is best). Earlier prompts and their scores:
{history}

Questions it got wrong (the model's answer, then the correct answer):
{failures}
{feedback}
First say in one or two sentences why the model fails. Then write one improved prompt between <prompt> and </prompt>. It must contain {placeholders} exactly as written, and should make the model reply with the short answer only.";

/// The fields an instructions template must use: without the prompt or the
/// failures, the interviewer has nothing to improve.
pub const REQUIRED: [&str; 2] = ["{prompt}", "{failures}"];

/// Every field a template may use.
pub const FIELDS: [&str; 8] = [
    "prompt",
    "failures",
    "successes",
    "metric",
    "score",
    "history",
    "placeholders",
    "feedback",
];

/// An instructions template without a required field is refused (the host
/// checks this before anything runs; the component again per call).
pub fn check_instructions(template: &str) -> Result<(), String> {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| !template.contains(f))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the instructions template lacks {} (required: {})",
            missing.join(" and "),
            REQUIRED.join(", ")
        ))
    }
}

/// The placeholders of `prompt` a candidate lost, in `required` order.
pub fn missing_placeholders<'a>(candidate: &str, required: &'a [String]) -> Vec<&'a str> {
    required
        .iter()
        .filter(|p| !candidate.contains(p.as_str()))
        .map(String::as_str)
        .collect()
}

/// The `{name}` placeholders a starting prompt uses (the default set a
/// candidate must keep), in order of first use, without repeats.
pub fn placeholders_of(prompt: &str) -> Vec<String> {
    template_kit::placeholders(prompt)
        .into_iter()
        .map(|p| format!("{{{p}}}"))
        .collect()
}

/// Fills `{field}`s of `template` from `values` in one pass: a `{...}`
/// that names no field, or a field's value that contains braces, is left
/// as written.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    template_kit::fill(template, values)
}

/// A proposal read out of the interviewer's reply.
#[derive(Debug, PartialEq, Eq)]
pub struct Proposal {
    /// What came before the prompt (the interviewer's diagnosis).
    pub analysis: String,
    /// The new prompt: the last `<prompt>...</prompt>` (an unclosed tag
    /// runs to the end); without a tag, the whole reply, which the host's
    /// placeholder check then usually refuses.
    pub prompt: String,
}

pub fn extract(reply: &str) -> Proposal {
    const OPEN: &str = "<prompt>";
    const CLOSE: &str = "</prompt>";
    match reply.rfind(OPEN) {
        Some(i) => {
            let body = &reply[i + OPEN.len()..];
            let body = body.find(CLOSE).map_or(body, |j| &body[..j]);
            Proposal {
                analysis: reply[..i].trim().to_string(),
                prompt: body.trim().to_string(),
            }
        }
        None => Proposal {
            analysis: String::new(),
            prompt: reply.trim().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_instructions_pass_their_own_check() {
        check_instructions(DEFAULT_INSTRUCTIONS).unwrap();
        let e = check_instructions("Improve {prompt}.").unwrap_err();
        assert!(e.contains("{failures}"), "{e}");
    }

    #[test]
    fn render_fills_once_and_leaves_unknown_braces() {
        let t = "P: {prompt} | keep {placeholders} | {other}";
        let r = render(
            t,
            &[("prompt", "Q: {question}"), ("placeholders", "{question}")],
        );
        assert_eq!(r, "P: Q: {question} | keep {question} | {other}");
        assert_eq!(render("{", &[]), "{");
        assert_eq!(render("a {prompt", &[("prompt", "x")]), "a {prompt");
    }

    #[test]
    fn placeholders_are_read_from_the_prompt() {
        assert_eq!(
            placeholders_of("Context: {context}\nQ: {question} {question} {not one} {}"),
            vec!["{context}".to_string(), "{question}".to_string()]
        );
        let req = placeholders_of("Q: {question}");
        assert_eq!(
            missing_placeholders("Answer: {question}", &req),
            Vec::<&str>::new()
        );
        assert_eq!(missing_placeholders("Answer it.", &req), vec!["{question}"]);
    }

    #[test]
    fn the_last_tagged_prompt_is_the_proposal() {
        let p = extract("It is vague.\n<prompt>Q: {question}\nA:</prompt> trailing");
        assert_eq!(p.analysis, "It is vague.");
        assert_eq!(p.prompt, "Q: {question}\nA:");
        let p = extract("x <prompt>first</prompt> y <prompt> second {question}");
        assert_eq!(p.prompt, "second {question}");
        let p = extract("no tags here");
        assert_eq!(
            (p.analysis.as_str(), p.prompt.as_str()),
            ("", "no tags here")
        );
    }
}
