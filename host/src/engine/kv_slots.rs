//! Which slots of a device model's KV pool are taken (see
//! [`super::device_llama`]). A sequence holds its slot through a
//! [`SlotLease`]; dropping the lease frees the slot, so a sequence dropped
//! on an error or a cancel leaks none.

use std::sync::{Arc, Mutex};

/// The free list of one pool, shared with its leases.
#[derive(Clone, Default)]
pub struct SlotTable(Arc<Mutex<Slots>>);

#[derive(Default)]
struct Slots {
    free: Vec<usize>,
    /// Slots handed out so far (the next new one).
    issued: usize,
}

/// A sequence's claim on one slot.
pub struct SlotLease {
    slot: usize,
    table: SlotTable,
}

impl SlotTable {
    /// The lowest free slot (so a batch's slots tend to be consecutive and
    /// attention reads them without a gather), or a new one; None only if
    /// the table's lock was poisoned by a panic.
    pub fn lease(&self) -> Option<SlotLease> {
        let mut t = self.0.lock().ok()?;
        t.free.sort_unstable_by(|a, b| b.cmp(a));
        let slot = match t.free.pop() {
            Some(s) => s,
            None => {
                t.issued += 1;
                t.issued - 1
            }
        };
        Some(SlotLease {
            slot,
            table: self.clone(),
        })
    }
}

impl SlotLease {
    pub fn slot(&self) -> usize {
        self.slot
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        if let Ok(mut t) = self.table.0.lock() {
            t.free.push(self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_slot_first_and_freed_on_drop() {
        let table = SlotTable::default();
        let a = table.lease().unwrap();
        let b = table.lease().unwrap();
        let c = table.lease().unwrap();
        assert_eq!((a.slot(), b.slot(), c.slot()), (0, 1, 2));
        drop(c);
        drop(a);
        assert_eq!(table.lease().unwrap().slot(), 0);
        let again = table.lease().unwrap();
        assert_eq!(again.slot(), 0, "the lease above was dropped at once");
        assert_eq!(table.lease().unwrap().slot(), 2);
        drop(b);
    }
}
