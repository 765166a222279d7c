//! Integer mixing functions: the only source of "randomness" in a workload.
//!
//! Everything random in martelli (task sizes, payload bytes, memory addresses) is derived by
//! hashing (seed, id, counter) with these functions, never from a stateful generator, so that
//! any task can be regenerated on its own, in any order, on any machine.

/// SplitMix64's finaliser: a bijective, well-distributed 64-bit mix.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Hashes a pair of words into one (not commutative: `hash2(a, b) != hash2(b, a)` in general).
#[inline]
pub(crate) fn hash2(a: u64, b: u64) -> u64 {
    mix64(a ^ mix64(b.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// Hashes three words into one.
#[inline]
pub(crate) fn hash3(a: u64, b: u64, c: u64) -> u64 {
    hash2(hash2(a, b), c)
}

/// Maps a hash to a float uniformly distributed in the open interval (0, 1).
#[inline]
pub fn unit_f64(h: u64) -> f64 {
    // 52 random bits, shifted by half a step so that 0 and 1 are never returned (the
    // log-normal sampler takes a logarithm of it). With 53 bits the top value would round to 1.
    ((h >> 12) as f64 + 0.5) / (1u64 << 52) as f64
}

/// Reduces a hash to an index in `0..len` without a division (Lemire's multiply-shift).
#[inline]
pub(crate) fn reduce(h: u64, len: usize) -> usize {
    ((u128::from(h) * len as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_strictly_inside_zero_one() {
        assert!(unit_f64(0) > 0.0);
        assert!(unit_f64(u64::MAX) < 1.0);
    }

    #[test]
    fn reduce_stays_in_range() {
        for h in [0, 1, u64::MAX / 2, u64::MAX] {
            assert!(reduce(h, 7) < 7);
        }
    }
}
