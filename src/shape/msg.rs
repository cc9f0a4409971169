//! `Msg`: a fixed-capacity message buffer written by `const fn`s, so that a shape rule evaluated at
//! compile time can report its error as a sentence with the sizes in decimal.

/// Capacity of a [`Msg`] in bytes; longer messages are cut at a character boundary and end in `…`.
pub const MSG_CAPACITY: usize = 480;

/// A message built in const code: `Msg::new().s("expects ").n(600).s(" features")`.
///
/// It is what a shape rule returns when it fails; the derive raises it with `panic!("{}", ...)` in a
/// non-generic constant, which `cargo check` reports as `error[E0080]: evaluation panicked: …`.
#[derive(Clone, Copy)]
pub struct Msg {
    buf: [u8; MSG_CAPACITY],
    len: usize,
}

impl Msg {
    /// The empty message.
    pub const fn new() -> Self {
        Msg { buf: [0; MSG_CAPACITY], len: 0 }
    }

    /// Appends `text`; text past the capacity is dropped (at a character boundary, with `…`).
    pub const fn s(mut self, text: &str) -> Self {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            // Stop at a character boundary when the next character does not fit (3 bytes kept for `…`).
            if self.len + 3 >= MSG_CAPACITY && (b[i] & 0xC0) != 0x80 {
                self.buf[self.len] = 0xE2;
                self.buf[self.len + 1] = 0x80;
                self.buf[self.len + 2] = 0xA6;
                self.len += 3;
                return self;
            }
            if self.len + 3 >= MSG_CAPACITY {
                // A continuation byte past the cut: drop it with the rest.
                return self;
            }
            self.buf[self.len] = b[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    /// Appends `v` in decimal.
    pub const fn n(self, mut v: usize) -> Self {
        let mut digits = [0u8; 20];
        let mut k = 0;
        loop {
            digits[k] = b'0' + (v % 10) as u8;
            k += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let mut out = [0u8; 20];
        let mut j = 0;
        while k > 0 {
            k -= 1;
            out[j] = digits[k];
            j += 1;
        }
        match core::str::from_utf8(out.split_at(j).0) {
            Ok(s) => self.s(s),
            Err(_) => self,
        }
    }

    /// Appends another message.
    pub const fn m(self, other: &Msg) -> Self {
        self.s(other.as_str())
    }

    /// Whether nothing was written.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The text.
    pub const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.buf.split_at(self.len).0) {
            Ok(s) => s,
            Err(_) => "(message not valid UTF-8)",
        }
    }
}

impl Default for Msg {
    fn default() -> Self {
        Msg::new()
    }
}

impl core::fmt::Debug for Msg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl core::fmt::Display for Msg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
