//! Prefix (prompt) caching: KV snapshots of recent prompts, so a new prompt
//! that shares a token prefix with one of them (few-shot exemplars, a system
//! prompt, RAG instructions) prefills only the part after it.
//!
//! Entries are whole-prompt snapshots evicted least-recently-used under a
//! byte budget. The lookup is a linear scan of token prefixes: a handful of
//! entries of a few hundred tokens costs microseconds next to one forward
//! pass, so no radix tree is needed at this scale.

use super::llama::KvSnapshot;

/// Default budget: about 5,500 tokens of SmolLM2-135M's KV state.
pub const DEFAULT_PREFIX_CACHE_BYTES: usize = 256 << 20;

struct Entry {
    tokens: Vec<u32>,
    kv: KvSnapshot,
    bytes: usize,
    last_used: u64,
}

/// Snapshots bounded by `capacity` bytes (0 = off).
pub struct PrefixCache {
    entries: Vec<Entry>,
    capacity: usize,
    used: usize,
    clock: u64,
}

impl PrefixCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Vec::new(),
            capacity,
            used: 0,
            clock: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn bytes_used(&self) -> usize {
        self.used
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The snapshot sharing the longest token prefix with `tokens`, and the
    /// length of that prefix (marked as used).
    pub fn longest_prefix(&mut self, tokens: &[u32]) -> Option<(&KvSnapshot, usize)> {
        let (i, n) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, common_prefix(&e.tokens, tokens)))
            .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))?;
        if n == 0 {
            return None;
        }
        self.clock += 1;
        let e = &mut self.entries[i];
        e.last_used = self.clock;
        Some((&e.kv, n))
    }

    /// Whether some entry already holds all of `tokens` (no need to store).
    pub fn covers(&self, tokens: &[u32]) -> bool {
        self.entries
            .iter()
            .any(|e| e.tokens.len() >= tokens.len() && e.tokens[..tokens.len()] == *tokens)
    }

    /// Stores the KV state of `tokens` (`kv.len() == tokens.len()`), evicting
    /// least recently used entries to stay within the budget. An entry that
    /// alone exceeds the budget is not stored.
    pub fn insert(&mut self, tokens: Vec<u32>, kv: KvSnapshot) {
        debug_assert_eq!(tokens.len(), kv.len());
        let bytes = kv.bytes();
        if bytes > self.capacity || tokens.is_empty() {
            return;
        }
        // An entry that is a prefix of the new one adds nothing any more.
        self.entries.retain(|e| {
            let redundant = e.tokens.len() <= tokens.len() && tokens[..e.tokens.len()] == e.tokens;
            if redundant {
                self.used -= e.bytes;
            }
            !redundant
        });
        while self.used + bytes > self.capacity {
            let Some(lru) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
            else {
                break;
            };
            self.used -= self.entries.swap_remove(lru).bytes;
        }
        self.clock += 1;
        self.used += bytes;
        self.entries.push(Entry {
            tokens,
            kv,
            bytes,
            last_used: self.clock,
        });
    }
}

/// Length of the longest common prefix of `a` and `b`.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(c: &mut PrefixCache, tokens: &[u32]) {
        c.insert(tokens.to_vec(), KvSnapshot::zeros(tokens.len()));
    }

    #[test]
    fn finds_the_longest_shared_prefix() {
        let mut c = PrefixCache::new(1 << 20);
        insert(&mut c, &[1, 2, 3, 4]);
        insert(&mut c, &[1, 2, 9]);
        assert_eq!(c.longest_prefix(&[1, 2, 3, 7]).map(|(_, n)| n), Some(3));
        assert_eq!(c.longest_prefix(&[1, 2, 9, 9]).map(|(_, n)| n), Some(3));
        assert_eq!(c.longest_prefix(&[1, 5]).map(|(_, n)| n), Some(1));
        assert!(c.longest_prefix(&[8]).is_none());
        assert!(c.covers(&[1, 2, 3]) && !c.covers(&[1, 2, 3, 4, 5]));
    }

    #[test]
    fn evicts_least_recently_used_within_the_byte_budget() {
        // 32 bytes per token: room for 10 tokens.
        let mut c = PrefixCache::new(320);
        insert(&mut c, &[1, 1, 1, 1]);
        insert(&mut c, &[2, 2, 2, 2]);
        // Touch the first: the second is now least recently used.
        assert!(c.longest_prefix(&[1, 1]).is_some());
        insert(&mut c, &[3, 3, 3, 3]);
        assert_eq!(c.len(), 2);
        assert!(c.bytes_used() <= 320);
        assert!(c.longest_prefix(&[2]).is_none(), "LRU entry evicted");
        assert!(c.longest_prefix(&[1]).is_some() && c.longest_prefix(&[3]).is_some());
        // Larger than the whole budget: not stored, nothing evicted.
        insert(&mut c, &[4; 11]);
        assert_eq!(c.len(), 2);
        // An entry extending an old one replaces it.
        insert(&mut c, &[3, 3, 3, 3, 5]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.bytes_used(), 9 * 32);
        // Off.
        let mut off = PrefixCache::new(0);
        insert(&mut off, &[1]);
        assert!(!off.enabled() && off.len() == 0);
    }
}
