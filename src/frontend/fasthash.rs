//! A fast, non-cryptographic hasher for the frontend's maps keyed by short
//! names and spans (the multiply-rotate scheme of rustc's FxHasher). Not
//! for data an attacker controls at scale: only for maps of one script's
//! names. Pure; never panics.

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Hashes words by rotate, xor and multiply.
#[derive(Clone, Copy, Default)]
pub struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FastBuild = BuildHasherDefault<FastHasher>;
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastBuild>;
pub type FastSet<K> = std::collections::HashSet<K, FastBuild>;
pub type FastIndexMap<K, V> = indexmap::IndexMap<K, V, FastBuild>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_with_it() {
        let mut m: FastIndexMap<String, u32> = FastIndexMap::default();
        for (i, name) in ["a", "eight_ch", "a_longer_name_than_eight", ""].iter().enumerate() {
            m.insert(name.to_string(), i as u32);
        }
        assert_eq!(m.get("eight_ch"), Some(&1));
        assert_eq!(m.get("a_longer_name_than_eight"), Some(&2));
        assert_eq!(m.get(""), Some(&3));
        assert_eq!(m.get("b"), None);
    }
}
