//! [`Input`]: the fuzzer's bytes read front to back as a few small fields and a rest.
//!
//! A target reads its mode and parameters first and hands the rest to the code under
//! test, so every input decodes to something: a field past the end reads as zero, which
//! keeps short inputs meaningful instead of rejecting them.

/// A cursor over one fuzz input.
#[derive(Debug)]
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The next byte, or 0 past the end.
    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    /// The next two bytes, big-endian, zero-padded past the end.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    /// The next four bytes, big-endian, zero-padded past the end.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    /// The next eight bytes, big-endian, zero-padded past the end.
    pub fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    /// The next `N` bytes, zero-padded past the end.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let taken = self.take(N);
        out[..taken.len()].copy_from_slice(taken);
        out
    }

    /// A field of up to `max` bytes, its length given by the next byte.
    pub fn short_bytes(&mut self, max: usize) -> &'a [u8] {
        let len = usize::from(self.u8()) % (max + 1);
        self.take(len)
    }

    /// Up to `len` bytes (fewer at the end).
    pub fn take(&mut self, len: usize) -> &'a [u8] {
        let (head, tail) = self.bytes.split_at(len.min(self.bytes.len()));
        self.bytes = tail;
        head
    }

    /// Whatever is left.
    pub fn rest(self) -> &'a [u8] {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_past_the_end_read_as_zero_and_the_rest_is_what_is_left() {
        let mut input = Input::new(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(input.u8(), 1);
        assert_eq!(input.u16(), 0x0203);
        assert_eq!(input.short_bytes(8), &[5, 6]);
        assert_eq!(input.u32(), 0);
        assert_eq!(input.rest(), &[] as &[u8]);
    }
}
