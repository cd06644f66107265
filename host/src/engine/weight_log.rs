//! What a model loader did to the file's weight types, for
//! [`super::ModelInfo::weights`] (recorded with every experiment and part
//! of the plan hash and the call cache's key): "as file (q4_1+q8_0)",
//! "q8_0 requantised from q4_1; kept q8_0", "f32 dequantised from q4_1".

use std::collections::BTreeSet;

use candle_core::quantized::GgmlDType;

#[derive(Default)]
pub struct WeightLog {
    /// File types requantised to Q8_0.
    requantised: BTreeSet<String>,
    /// File types dequantised to f32 (`weights = "f32"`, or a matrix an
    /// adapter changes).
    dequantised: BTreeSet<String>,
    /// File types used as they are.
    kept: BTreeSet<String>,
}

fn name(d: GgmlDType) -> String {
    format!("{d:?}").to_lowercase()
}

impl WeightLog {
    pub fn requantised(&mut self, d: GgmlDType) {
        self.requantised.insert(name(d));
    }

    pub fn dequantised(&mut self, d: GgmlDType) {
        self.dequantised.insert(name(d));
    }

    pub fn kept(&mut self, d: GgmlDType) {
        self.kept.insert(name(d));
    }

    /// The description; the strings for the cases earlier builds had are
    /// unchanged (stored plan hashes and cache keys depend on them).
    pub fn describe(&self) -> String {
        let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join("+");
        let mut changed = Vec::new();
        if !self.requantised.is_empty() {
            changed.push(format!("q8_0 requantised from {}", join(&self.requantised)));
        }
        if !self.dequantised.is_empty() {
            changed.push(format!("f32 dequantised from {}", join(&self.dequantised)));
        }
        match (changed.is_empty(), self.kept.is_empty()) {
            (true, _) => format!("as file ({})", join(&self.kept)),
            (false, true) => changed.join("; "),
            (false, false) => format!("{}; kept {}", changed.join("; "), join(&self.kept)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_of_earlier_builds_are_unchanged() {
        let mut log = WeightLog::default();
        log.kept(GgmlDType::Q4_1);
        log.kept(GgmlDType::Q8_0);
        assert_eq!(log.describe(), "as file (q4_1+q8_0)");
        let mut log = WeightLog::default();
        log.requantised(GgmlDType::Q4_1);
        log.kept(GgmlDType::Q8_0);
        assert_eq!(log.describe(), "q8_0 requantised from q4_1; kept q8_0");
        let mut log = WeightLog::default();
        log.requantised(GgmlDType::Q4_1);
        assert_eq!(log.describe(), "q8_0 requantised from q4_1");
        let mut log = WeightLog::default();
        log.dequantised(GgmlDType::Q4_1);
        log.kept(GgmlDType::Q8_0);
        assert_eq!(log.describe(), "f32 dequantised from q4_1; kept q8_0");
    }
}
