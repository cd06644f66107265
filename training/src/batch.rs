//! A padded batch of `prompt ++ completion` sequences and which positions
//! are scored: position `p` predicts token `p + 1`, so completion token `j`
//! (at `prompt_len + j`) is scored from the row before it. Prompt tokens
//! and padding are never scored (TRL's `completion_mask[..., 1:]`).

use candle_core::{Device, Tensor};

use crate::error::{Result, TrainError};

/// Right-padded token ids and the scored positions, ready for the model.
#[derive(Clone, Debug)]
pub struct Batch {
    pub(crate) ids: Tensor,
    pub(crate) rows: usize,
    pub(crate) width: usize,
    pub(crate) lens: Vec<usize>,
    /// Flat positions (`row * width + p`) whose next token is scored.
    pub(crate) scored_positions: Tensor,
    /// The scored tokens, aligned with `scored_positions`.
    pub(crate) targets: Tensor,
    /// Which row each scored position belongs to.
    pub(crate) scored_row: Tensor,
    /// Scored tokens per row.
    pub(crate) scored_per_row: Vec<usize>,
    /// Completion tokens per row (TRL's `completion_mask.sum(1)`, IPO's divisor).
    pub(crate) completion_lens: Vec<usize>,
    pub(crate) max_id: u32,
}

/// Padding id: never attended to by a real token (causal mask, right
/// padding) and never scored, so its value does not matter.
const PAD: u32 = 0;

impl Batch {
    /// `sequences`: `(prompt_ids, completion_ids)` per row.
    pub fn new(sequences: &[(&[u32], &[u32])]) -> Result<Self> {
        if sequences.is_empty() {
            return Err(TrainError::Batch("empty batch".into()));
        }
        let lens: Vec<usize> = sequences.iter().map(|(p, c)| p.len() + c.len()).collect();
        let width = *lens.iter().max().expect("non-empty");
        if width == 0 {
            return Err(TrainError::Batch("every sequence is empty".into()));
        }
        let mut ids = Vec::with_capacity(sequences.len() * width);
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        let mut scored_row = Vec::new();
        let mut scored_per_row = Vec::new();
        for (row, (prompt, completion)) in sequences.iter().enumerate() {
            let start = ids.len();
            ids.extend_from_slice(prompt);
            ids.extend_from_slice(completion);
            ids.resize(start + width, PAD);
            // A completion with no prompt before it: its first token has
            // no context and is not scored (as in TRL).
            let first = prompt.len().max(1);
            let len = prompt.len() + completion.len();
            for p in first..len {
                positions.push((row * width + p - 1) as u32);
                targets.push(ids[start + p]);
                scored_row.push(row as u32);
            }
            scored_per_row.push(len.saturating_sub(first));
        }
        let max_id = ids.iter().copied().max().unwrap_or(0);
        let n = positions.len();
        let dev = &Device::Cpu;
        Ok(Self {
            ids: Tensor::from_vec(ids, sequences.len() * width, dev)?,
            rows: sequences.len(),
            width,
            lens,
            scored_positions: Tensor::from_vec(positions, n, dev)?,
            targets: Tensor::from_vec(targets, n, dev)?,
            scored_row: Tensor::from_vec(scored_row, n, dev)?,
            scored_per_row,
            completion_lens: sequences.iter().map(|(_, c)| c.len()).collect(),
            max_id,
        })
    }

    /// Number of sequences.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Padded length.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Real (unpadded) tokens in the batch.
    pub fn tokens(&self) -> usize {
        self.lens.iter().sum()
    }

    /// Completion tokens of each sequence.
    pub fn completion_lens(&self) -> &[usize] {
        &self.completion_lens
    }

    pub(crate) fn scored(&self) -> usize {
        self.scored_per_row.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_completion_tokens_from_the_row_before() {
        let b = Batch::new(&[(&[5, 6][..], &[7, 8, 9][..]), (&[1][..], &[2][..])]).unwrap();
        assert_eq!(b.width, 5);
        assert_eq!(
            b.ids.to_vec1::<u32>().unwrap(),
            [5, 6, 7, 8, 9, 1, 2, PAD, PAD, PAD]
        );
        // Row 0: positions 1, 2, 3 predict 7, 8, 9; row 1: position 0 (flat 5) predicts 2.
        assert_eq!(b.scored_positions.to_vec1::<u32>().unwrap(), [1, 2, 3, 5]);
        assert_eq!(b.targets.to_vec1::<u32>().unwrap(), [7, 8, 9, 2]);
        assert_eq!(b.scored_row.to_vec1::<u32>().unwrap(), [0, 0, 0, 1]);
        assert_eq!(b.scored_per_row, [3, 1]);
        assert_eq!(b.tokens(), 7);
    }

    #[test]
    fn empty_prompt_leaves_the_first_completion_token_unscored() {
        let b = Batch::new(&[(&[][..], &[3, 4][..])]).unwrap();
        assert_eq!(b.targets.to_vec1::<u32>().unwrap(), [4]);
        assert_eq!(b.completion_lens, [2]);
    }

    #[test]
    fn empty_batch_is_an_error() {
        assert!(Batch::new(&[]).is_err());
    }
}
