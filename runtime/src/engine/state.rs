//! A step's durable state as the running plugin sees it (`state-get`, `state-set`): key ->
//! bytes, capped at [`MAX_STATE_BYTES`] in all, with its size kept as it changes so that each
//! set costs O(log n), not a pass over every entry.
use std::collections::BTreeMap;

/// Bytes of durable state one step may hold (keys and values together).
pub const MAX_STATE_BYTES: usize = 16 << 20;

/// The entries and their size.
#[derive(Debug, Clone, Default)]
pub struct StepState {
    entries: BTreeMap<String, Vec<u8>>,
    bytes: usize,
}

/// The size of one entry as it counts against the cap.
fn size(key: &str, value: &[u8]) -> usize {
    key.len() + value.len()
}

impl StepState {
    /// The state loaded from the step's checkpoint.
    pub fn new(entries: BTreeMap<String, Vec<u8>>) -> Self {
        let bytes = entries.iter().map(|(k, v)| size(k, v)).sum();
        Self { entries, bytes }
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Vec<u8>> {
        self.entries.get(key)
    }

    /// Sets `key` to `value`, unless the state would then hold more than [`MAX_STATE_BYTES`]
    /// (`Err`, nothing changed).
    pub fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), StateFull> {
        let old = self.entries.get(&key).map_or(0, |v| size(&key, v));
        let bytes = self.bytes - old + size(&key, &value);
        if bytes > MAX_STATE_BYTES {
            return Err(StateFull);
        }
        self.bytes = bytes;
        self.entries.insert(key, value);
        Ok(())
    }

    /// Bytes held (keys and values).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entries, to be saved with the run.
    pub fn entries(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.entries
    }
}

/// A `set` refused: the state would exceed [`MAX_STATE_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFull;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_follows_sets_and_overwrites_and_the_cap_refuses_without_a_change() {
        let mut s = StepState::new(BTreeMap::from([("a".to_string(), vec![0; 9])]));
        assert_eq!(s.bytes(), 10);
        s.set("b".into(), vec![0; 4]).unwrap();
        assert_eq!(s.bytes(), 15);
        s.set("a".into(), vec![0; 1]).unwrap();
        assert_eq!(s.bytes(), 7, "an overwrite counts the new value only");
        let big = vec![0; MAX_STATE_BYTES];
        assert_eq!(s.set("c".into(), big), Err(StateFull));
        assert_eq!((s.bytes(), s.entries().len()), (7, 2));
        s.set("b".into(), vec![0; MAX_STATE_BYTES - 3]).unwrap();
        assert_eq!(s.bytes(), MAX_STATE_BYTES);
    }
}
