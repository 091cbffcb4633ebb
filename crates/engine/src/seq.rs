//! Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).
//!
//! `a < b` iff `(b - a) mod 2^32` lies in `(0, 2^31)`. Numbers exactly 2^31 apart are
//! neither less nor greater than each other; `lt`/`gt` both return false for them.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A 32-bit TCP sequence number with wrapping comparison.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Wrapping distance `self - other` as a signed value.
    #[inline]
    #[must_use]
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    #[inline]
    /// `self < other` modulo 2^32 (RFC 9293 §3.4).
    #[must_use]
    pub fn lt(self, other: SeqNum) -> bool {
        let d = other.0.wrapping_sub(self.0);
        d != 0 && d < 0x8000_0000
    }
    #[inline]
    /// `self <= other` modulo 2^32 (RFC 9293 §3.4).
    #[must_use]
    pub fn le(self, other: SeqNum) -> bool {
        self == other || self.lt(other)
    }
    #[inline]
    /// `self > other` modulo 2^32 (RFC 9293 §3.4).
    #[must_use]
    pub fn gt(self, other: SeqNum) -> bool {
        other.lt(self)
    }
    #[inline]
    /// `self >= other` modulo 2^32 (RFC 9293 §3.4).
    #[must_use]
    pub fn ge(self, other: SeqNum) -> bool {
        self == other || other.lt(self)
    }
    /// `lo <= self < hi` in sequence space (RFC 9293 §3.4 acceptability style).
    #[inline]
    #[must_use]
    pub fn in_window(self, lo: SeqNum, len: u32) -> bool {
        self.0.wrapping_sub(lo.0) < len
    }
    /// The larger of two sequence numbers (wrapping comparison).
    #[inline]
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.lt(other) { other } else { self }
    }
    /// The smaller of two sequence numbers (wrapping comparison).
    #[inline]
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.lt(other) { self } else { other }
    }
    /// Unsigned distance from `other` forward to `self`, i.e. `(self - other) mod 2^32`.
    #[inline]
    pub fn since(self, other: SeqNum) -> u32 {
        self.0.wrapping_sub(other.0)
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for SeqNum {
    #[inline]
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
