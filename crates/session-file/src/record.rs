//! The session file format.
//!
//! A session file is a 42-byte header, the key, then the value:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..8 | magic `SESSFIL` and format version `1` |
//! | 8..16 | `expires_at`: unix nanoseconds, little endian; 0 = never |
//! | 16..24 | `created_at`: unix nanoseconds |
//! | 24..32 | `updated_at`: unix nanoseconds |
//! | 32..34 | key length in bytes (at most 255) |
//! | 34..42 | value length in bytes |
//! | 42.. | the key (UTF-8), then the value |
//!
//! A file is valid only if its length is exactly header + key + value: a
//! file cut short (a crash without `fsync` on some file systems) or grown
//! is refused as corrupt, never read as a shorter value.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use bytes::Bytes;

/// The magic and version at the start of every session file.
pub(crate) const MAGIC: [u8; 8] = *b"SESSFIL\x01";
/// The header's length in bytes.
pub(crate) const HEADER_LEN: usize = 42;

/// The fixed-size part of a session file, and the key that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// Unix nanoseconds; `None` for a session that never expires.
    pub(crate) expires_at: Option<u64>,
    pub(crate) created_at: u64,
    pub(crate) updated_at: u64,
    pub(crate) key: Vec<u8>,
    pub(crate) value_len: u64,
}

impl Head {
    /// The offset of the value in the file.
    fn value_offset(&self) -> usize {
        HEADER_LEN + self.key.len()
    }

    /// The length the file must have; `None` if the header's value length
    /// is too large for any file (a corrupt or hostile header must not
    /// overflow the sum).
    fn file_len(&self) -> Option<u64> {
        u64::try_from(self.value_offset())
            .ok()?
            .checked_add(self.value_len)
    }
}

/// A whole session file.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) head: Head,
    pub(crate) value: Bytes,
}

/// What a file turned out to hold.
#[derive(Debug)]
pub(crate) enum Parsed<T> {
    Valid(T),
    /// Not a session file of this format, or one cut short; the reason.
    Corrupt(&'static str),
}

/// The header and key of a new file, ready to be followed by the value.
pub(crate) fn encode_head(
    key: &str,
    value_len: usize,
    expires_at: Option<u64>,
    created_at: u64,
    updated_at: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + key.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&expires_at.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&created_at.to_le_bytes());
    out.extend_from_slice(&updated_at.to_le_bytes());
    // Keys are validated to at most 255 bytes before anything is written.
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&(value_len as u64).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Parses the fixed header (exactly [`HEADER_LEN`] bytes); the key is left
/// empty, with its length returned.
fn parse_header(b: &[u8]) -> Result<(Head, usize), &'static str> {
    if b.len() < HEADER_LEN {
        return Err("shorter than the header");
    }
    if b[..8] != MAGIC {
        return Err("not a session file of this format (bad magic)");
    }
    let expires_at = match u64_at(b, 8) {
        0 => None,
        at => Some(at),
    };
    let key_len = usize::from(u16::from_le_bytes([b[32], b[33]]));
    if key_len == 0 || key_len > session_core::MAX_KEY_BYTES {
        return Err("bad key length");
    }
    Ok((
        Head {
            expires_at,
            created_at: u64_at(b, 16),
            updated_at: u64_at(b, 24),
            key: Vec::new(),
            value_len: u64_at(b, 34),
        },
        key_len,
    ))
}

/// Parses a whole file.
pub(crate) fn decode(bytes: Bytes) -> Parsed<Record> {
    let (mut head, key_len) = match parse_header(&bytes) {
        Ok(parsed) => parsed,
        Err(why) => return Parsed::Corrupt(why),
    };
    let key_end = HEADER_LEN + key_len;
    if bytes.len() < key_end {
        return Parsed::Corrupt("shorter than its key");
    }
    head.key = bytes[HEADER_LEN..key_end].to_vec();
    if head.file_len() != Some(bytes.len() as u64) {
        return Parsed::Corrupt("its length does not match its header (cut short?)");
    }
    let value = bytes.slice(head.value_offset()..);
    Parsed::Valid(Record { head, value })
}

/// Reads the header and key of the file at `path` without its value;
/// `Ok(None)` if there is no such file.
pub(crate) fn read_head(path: &Path) -> io::Result<Option<Parsed<Head>>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut buf = [0u8; HEADER_LEN + session_core::MAX_KEY_BYTES];
    let wanted = buf.len().min(usize::try_from(len).unwrap_or(usize::MAX));
    file.read_exact(&mut buf[..wanted])?;
    let (mut head, key_len) = match parse_header(&buf[..wanted]) {
        Ok(parsed) => parsed,
        Err(why) => return Ok(Some(Parsed::Corrupt(why))),
    };
    if wanted < HEADER_LEN + key_len {
        return Ok(Some(Parsed::Corrupt("shorter than its key")));
    }
    head.key = buf[HEADER_LEN..HEADER_LEN + key_len].to_vec();
    if head.file_len() != Some(len) {
        return Ok(Some(Parsed::Corrupt(
            "its length does not match its header (cut short?)",
        )));
    }
    Ok(Some(Parsed::Valid(head)))
}

/// Reads the whole file at `path`; `Ok(None)` if there is no such file.
pub(crate) fn read_record(path: &Path) -> io::Result<Option<Parsed<Record>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(decode(Bytes::from(bytes)))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(key: &str, value: &[u8], expires_at: Option<u64>) -> Vec<u8> {
        let mut out = encode_head(key, value.len(), expires_at, 7, 9);
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn round_trips() {
        for (value, expires) in [(&b""[..], None), (&b"v\0\xff"[..], Some(42))] {
            let bytes = file("k\u{e9}", value, expires);
            let Parsed::Valid(record) = decode(Bytes::from(bytes)) else {
                panic!("not valid")
            };
            assert_eq!(record.value, value);
            assert_eq!(record.head.key, "k\u{e9}".as_bytes());
            assert_eq!(record.head.expires_at, expires);
            assert_eq!((record.head.created_at, record.head.updated_at), (7, 9));
        }
    }

    #[test]
    fn every_cut_and_any_extra_byte_is_corrupt() {
        let whole = file("key", b"some value", Some(5));
        for cut in 0..whole.len() {
            assert!(
                matches!(
                    decode(Bytes::copy_from_slice(&whole[..cut])),
                    Parsed::Corrupt(_)
                ),
                "cut at {cut}"
            );
        }
        let mut longer = whole.clone();
        longer.push(0);
        assert!(matches!(decode(Bytes::from(longer)), Parsed::Corrupt(_)));
        let mut magic = whole;
        magic[0] = b'X';
        assert!(matches!(decode(Bytes::from(magic)), Parsed::Corrupt(_)));
    }

    /// A header whose value length is near `u64::MAX` is corrupt, not an
    /// arithmetic overflow (a panic in debug builds).
    #[test]
    fn a_huge_value_length_is_corrupt_not_an_overflow() {
        let dir = std::env::temp_dir().join(format!("session-file-huge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        for value_len in [u64::MAX, u64::MAX - 45, u64::MAX / 2] {
            let mut bytes = file("key", b"v", Some(5));
            bytes[34..42].copy_from_slice(&value_len.to_le_bytes());
            assert!(matches!(
                decode(Bytes::copy_from_slice(&bytes)),
                Parsed::Corrupt(_)
            ));
            std::fs::write(&path, &bytes).unwrap();
            assert!(matches!(
                read_head(&path).unwrap(),
                Some(Parsed::Corrupt(_))
            ));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_head_alone_reads_the_same() {
        let dir = std::env::temp_dir().join(format!("session-file-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, file("key", &[1u8; 1000], Some(5))).unwrap();
        let Some(Parsed::Valid(head)) = read_head(&path).unwrap() else {
            panic!("not valid")
        };
        assert_eq!(head.key, b"key");
        assert_eq!(head.value_len, 1000);
        // Cut short: the head alone notices too.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(
            read_head(&path).unwrap(),
            Some(Parsed::Corrupt(_))
        ));
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(matches!(
            read_head(&path).unwrap(),
            Some(Parsed::Corrupt(_))
        ));
        assert!(read_head(&dir.join("missing")).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
