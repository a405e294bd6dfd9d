//! Jute, ZooKeeper's binary record encoding: big-endian integers, length-prefixed buffers and
//! strings (`-1` = null), count-prefixed vectors. Records are plain concatenations of fields.
//!
//! [`Writer`] appends to a [`BytesMut`]; [`Reader`] walks a byte slice and checks every length
//! against the bytes that are actually left *before* allocating, so a garbage length can never
//! make the decoder allocate what the frame claims.

use bytes::{BufMut, BytesMut};
use std::fmt;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What was being read when the bytes ran out or made no sense.
    pub what: &'static str,
    /// Offset in the record at which decoding failed.
    pub offset: usize,
    /// Details.
    pub detail: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot decode {} at byte {}: {}",
            self.what, self.offset, self.detail
        )
    }
}

impl std::error::Error for DecodeError {}

/// Encodes jute primitives into a buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> Writer<'a> {
    /// Wraps a buffer; everything written is appended.
    pub fn new(buf: &'a mut BytesMut) -> Self {
        Writer { buf }
    }

    /// `boolean`: one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.put_u8(v as u8);
        self
    }

    /// `int`: 4 bytes big-endian.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.put_i32(v);
        self
    }

    /// `long`: 8 bytes big-endian.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.put_i64(v);
        self
    }

    /// `buffer`: int length + bytes.
    pub fn buffer(&mut self, v: &[u8]) -> &mut Self {
        self.buf.put_i32(v.len() as i32);
        self.buf.put_slice(v);
        self
    }

    /// `buffer` that may be null (length -1).
    pub fn opt_buffer(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(v) => self.buffer(v),
            None => self.i32(-1),
        }
    }

    /// `ustring`: int length + UTF-8 bytes.
    pub fn string(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }

    /// `ustring` of `a` followed by `b`, without joining them first (a chroot and a path).
    pub fn string2(&mut self, a: &str, b: &str) -> &mut Self {
        self.buf.put_i32((a.len() + b.len()) as i32);
        self.buf.put_slice(a.as_bytes());
        self.buf.put_slice(b.as_bytes());
        self
    }

    /// `vector<ustring>`.
    pub fn strings<S: AsRef<str>>(&mut self, v: &[S]) -> &mut Self {
        self.i32(v.len() as i32);
        for s in v {
            self.string(s.as_ref());
        }
        self
    }

    /// Appends raw bytes (no length prefix).
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.put_slice(v);
        self
    }

    /// Bytes written into the underlying buffer so far (including what was there before).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the underlying buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Decodes jute primitives from a byte slice. Trailing bytes are tolerated (the Java peers do the
/// same; it is how optional trailing fields such as `readOnly` work).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Current offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread rest of the input.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn err(&self, what: &'static str, detail: impl Into<String>) -> DecodeError {
        DecodeError {
            what,
            offset: self.pos,
            detail: detail.into(),
        }
    }

    // Inlined, with the error built out of line: every reply decodes a dozen of these, and the
    // error's formatting kept them from inlining (a call per field).
    #[inline(always)]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.short(n, what)),
        }
    }

    #[cold]
    #[inline(never)]
    fn short(&self, n: usize, what: &'static str) -> DecodeError {
        self.err(what, format!("need {} bytes, {} left", n, self.remaining()))
    }

    /// The next `N` bytes at once, for a record of fixed size (a `Stat`, a reply header):
    /// one bounds check for all its fields. A short input is an error naming `what`.
    #[inline(always)]
    pub fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<&'a [u8; N], DecodeError> {
        let b = self.take(N, what)?;
        Ok(b.try_into().expect("take returns N bytes"))
    }

    /// `boolean`: any non-zero byte is true.
    #[inline(always)]
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1, "boolean")?[0] != 0)
    }

    /// `int`.
    #[inline(always)]
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4, "int")?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `long`.
    #[inline(always)]
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8, "long")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// `buffer` that may be null (length -1). Any other negative length is an error.
    #[inline]
    pub fn opt_buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(self.err("buffer", format!("negative length {len}")));
        }
        self.take(len as usize, "buffer").map(Some)
    }

    /// `buffer`; null decodes as empty.
    #[inline]
    pub fn buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        Ok(self.opt_buffer()?.unwrap_or(&[]))
    }

    /// `ustring`; null decodes as empty. Decoding is lenient: the server's encoder writes
    /// characters outside the BMP as CESU-8, which is replaced rather than rejected.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.buffer()?;
        Ok(match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        })
    }

    /// Reads a vector count and checks it against the bytes left, given the smallest encoded
    /// size of one element, so a bogus count cannot trigger a huge allocation.
    pub fn count(
        &mut self,
        what: &'static str,
        min_elem: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(self.err(what, format!("negative count {n}")));
        }
        let n = n as usize;
        if n.saturating_mul(min_elem) > self.remaining() {
            return Err(self.err(
                what,
                format!("count {n} cannot fit in {} bytes", self.remaining()),
            ));
        }
        Ok(Some(n))
    }

    /// `vector<ustring>`; null decodes as empty.
    pub fn strings(&mut self) -> Result<Vec<String>, DecodeError> {
        let n = self.count("vector<ustring>", 4)?.unwrap_or(0);
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.string()?);
        }
        Ok(v)
    }
}

/// The `int` at `at` of a fixed-size record read with [`Reader::array`].
#[inline(always)]
pub fn i32_at<const N: usize>(b: &[u8; N], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The `long` at `at` of a fixed-size record read with [`Reader::array`].
#[inline(always)]
pub fn i64_at<const N: usize>(b: &[u8; N], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// A record with a two-sided jute encoding: every record the client uses encodes *and* decodes,
/// so the same code can serve a server or a proxy later.
pub trait Record: Sized {
    /// Appends the encoding of `self`.
    fn write(&self, w: &mut Writer<'_>);
    /// Decodes one record from the reader.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> BytesMut {
        let mut b = BytesMut::new();
        self.write(&mut Writer::new(&mut b));
        b
    }

    /// Decodes from a byte slice (trailing bytes are ignored).
    fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut b = BytesMut::new();
        Writer::new(&mut b)
            .bool(true)
            .i32(-2)
            .i64(0x0102_0304_0506_0708)
            .buffer(b"ab")
            .opt_buffer(None)
            .string("zé")
            .strings(&["x", "yz"]);
        assert_eq!(
            &b[..],
            &[
                1, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 2, b'a', b'b', 0xff,
                0xff, 0xff, 0xff, 0, 0, 0, 3, b'z', 0xc3, 0xa9, 0, 0, 0, 2, 0, 0, 0, 1, b'x', 0, 0,
                0, 2, b'y', b'z'
            ][..]
        );
        let mut r = Reader::new(&b);
        assert!(r.bool().unwrap());
        assert_eq!(r.i32().unwrap(), -2);
        assert_eq!(r.i64().unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(r.buffer().unwrap(), b"ab");
        assert_eq!(r.opt_buffer().unwrap(), None);
        assert_eq!(r.string().unwrap(), "zé");
        assert_eq!(r.strings().unwrap(), vec!["x", "yz"]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn bogus_lengths_are_errors_not_allocations() {
        // buffer claiming 2 GiB with 3 bytes behind it
        let b = [0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(Reader::new(&b).buffer().is_err());
        // vector claiming 1e9 strings
        let b = [0x3b, 0x9a, 0xca, 0x00, 0, 0, 0, 0];
        assert!(Reader::new(&b).strings().is_err());
        // negative length other than -1
        let b = [0xff, 0xff, 0xff, 0xfe];
        assert!(Reader::new(&b).opt_buffer().is_err());
        // truncated int
        assert!(Reader::new(&[0, 0, 1]).i32().is_err());
    }

    #[test]
    fn cesu8_is_decoded_leniently() {
        // U+1F600 as CESU-8 surrogates: ED A0 BD ED B8 80
        let b = [0, 0, 0, 6, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80];
        let s = Reader::new(&b).string().unwrap();
        assert!(s.contains('\u{fffd}'));
    }
}
