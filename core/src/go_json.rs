//! JSON as Go's encoding/json writes it, and so etcd's v2 API: HTML-safe (`<`, `>` and `&`
//! as `\u003c`, `\u003e`, `\u0026`; U+2028 and U+2029 as `\u2028`, `\u2029`) and control
//! characters other than `\n`, `\r` and `\t` as `\u00XX` (serde_json writes `\b` and `\f`).
//! The same value parses either way; the bytes on the wire are etcd's.

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use std::io::{self, Write};

struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let escape: Option<&[u8]> = match bytes[i] {
                b'<' => Some(b"\\u003c"),
                b'>' => Some(b"\\u003e"),
                b'&' => Some(b"\\u0026"),
                // U+2028 and U+2029: E2 80 A8 / E2 80 A9.
                0xE2 if bytes.get(i + 1) == Some(&0x80) => match bytes.get(i + 2) {
                    Some(0xA8) => Some(b"\\u2028"),
                    Some(0xA9) => Some(b"\\u2029"),
                    _ => None,
                },
                _ => None,
            };
            match escape {
                Some(e) => {
                    w.write_all(&bytes[start..i])?;
                    w.write_all(e)?;
                    i += if bytes[i] == 0xE2 { 3 } else { 1 };
                    start = i;
                }
                None => i += 1,
            }
        }
        w.write_all(&bytes[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => serde_json::ser::CompactFormatter.write_char_escape(w, other),
        }
    }
}

/// `v` as Go writes it, appended to `out`.
pub(crate) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let mut ser = Serializer::with_formatter(out, GoFormatter);
    v.serialize(&mut ser).expect("JSON of a value in memory");
}

/// `v` as Go writes it.
pub(crate) fn to_string<T: Serialize + ?Sized>(v: &T) -> String {
    let mut out = Vec::with_capacity(128);
    write(&mut out, v);
    String::from_utf8(out).expect("JSON is UTF-8")
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_characters_separators_and_controls_are_escaped_as_go_does() {
        let s = super::to_string(
            &serde_json::json!({"k": "a<b>&c\u{2028}\u{2029}\u{8}\u{c}\n\t\"\\é\u{1}"}),
        );
        assert_eq!(
            s,
            r#"{"k":"a\u003cb\u003e\u0026c\u2028\u2029\u0008\u000c\n\t\"\\é\u0001"}"#
        );
    }
}
