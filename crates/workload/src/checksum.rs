//! The run checksum: an order-independent fold of task digests.
//!
//! Each digest is mixed before it is added, so that the sum detects a missing task, a task run
//! twice, or a wrong digest, while the order in which threads, processes or machines finish
//! their tasks cannot change it.

use std::fmt;

use crate::mix::mix64;

/// The checksum of a set of task digests, with the number of digests folded in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Checksum {
    sum: u64,
    count: u64,
}

impl Checksum {
    /// Adds one task's digest.
    #[inline]
    pub fn add(&mut self, digest: u64) {
        self.sum = self.sum.wrapping_add(mix64(digest));
        self.count += 1;
    }

    /// Combines two partial checksums (addition: associative and commutative).
    pub fn merge(self, other: Checksum) -> Checksum {
        Checksum {
            sum: self.sum.wrapping_add(other.sum),
            count: self.count + other.count,
        }
    }

    /// Number of digests added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The checksum as one word (the digest sum mixed with the count).
    pub fn value(&self) -> u64 {
        mix64(self.sum ^ mix64(self.count))
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(digests: &[u64]) -> Checksum {
        let mut c = Checksum::default();
        digests.iter().for_each(|&d| c.add(d));
        c
    }

    #[test]
    fn order_does_not_matter_but_content_does() {
        assert_eq!(of(&[1, 2, 3]), of(&[3, 1, 2]));
        assert_eq!(of(&[1, 2]).merge(of(&[3])), of(&[1, 2, 3]));
        assert_ne!(of(&[1, 2, 3]).value(), of(&[1, 2]).value(), "a lost task");
        assert_ne!(
            of(&[1, 2, 3]).value(),
            of(&[1, 2, 3, 3]).value(),
            "a repeated task"
        );
        assert_ne!(of(&[1, 2, 3]).value(), of(&[1, 2, 4]).value(), "a wrong digest");
    }

    #[test]
    fn displays_as_sixteen_hex_digits() {
        assert_eq!(of(&[]).to_string().len(), 16);
    }
}
