//! The member's log: `--log-level` and `--log-format`. `json` writes one object per line
//! with zap's fields as etcd writes them (level, ts, caller, msg, then the context), so the
//! log shippers and queries people use on etcd's log work on ours; `text` is for people.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl LogFormat {
    /// etcd 3.5's spellings: `json`, and `console` for the human one.
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s {
            "json" => Ok(LogFormat::Json),
            "text" | "console" => Ok(LogFormat::Text),
            _ => Err(format!(
                "--log-format: unknown format {s:?} (json, text or console)"
            )),
        }
    }
}

/// etcd's levels (zap's names); `panic` and `fatal` log errors only, as there.
pub fn parse_level(s: &str) -> Result<Level, String> {
    match s {
        "debug" => Ok(Level::DEBUG),
        "info" => Ok(Level::INFO),
        "warn" => Ok(Level::WARN),
        "error" | "dpanic" | "panic" | "fatal" => Ok(Level::ERROR),
        _ => Err(format!(
            "--log-level: unknown level {s:?} (debug, info, warn or error)"
        )),
    }
}

fn zap_level(l: &Level) -> &'static str {
    match *l {
        Level::TRACE | Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// One event's fields as JSON values: numbers and booleans stay what they are.
#[derive(Default)]
struct Fields {
    msg: String,
    context: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.msg = match value {
                serde_json::Value::String(s) => s,
                v => v.to_string(),
            };
        } else {
            self.context.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        // A list of strings (URLs, say) reads as what it is: a JSON array, as zap writes one.
        let list = text
            .starts_with('[')
            .then(|| serde_json::from_str::<serde_json::Value>(&text).ok())
            .flatten();
        self.put(field, list.unwrap_or(text.into()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
}

/// zap's production JSON encoder, as etcd configures it.
pub struct ZapJson;

impl<S, N> FormatEvent<S, N> for ZapJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let caller = match (meta.file(), meta.line()) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            _ => meta.target().to_string(),
        };
        let mut line = serde_json::Map::new();
        line.insert("level".into(), zap_level(meta.level()).into());
        line.insert(
            "ts".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("caller".into(), caller.into());
        line.insert("msg".into(), fields.msg.into());
        for (k, v) in fields.context {
            // A context field never hides one of zap's own.
            let k = if line.contains_key(&k) {
                format!("field.{k}")
            } else {
                k
            };
            line.insert(k, v);
        }
        writeln!(w, "{}", serde_json::Value::Object(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_zaps_fields_and_typed_context() {
        let buf = Buf::default();
        let out = buf.clone();
        let sub = tracing_subscriber::fmt()
            .event_format(ZapJson)
            .with_writer(move || out.clone())
            .with_max_level(Level::INFO)
            .finish();
        tracing::subscriber::with_default(sub, || {
            let urls = vec!["http://127.0.0.1:2379".to_string()];
            tracing::info!(
                urls = ?urls,
                term = 7u64,
                leader = true,
                member = "8e9e05c52164694d",
                level = "x",
                "became leader"
            );
            tracing::debug!("not shown at info");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["msg"], "became leader");
        assert_eq!(v["term"], 7);
        assert_eq!(v["leader"], true);
        assert_eq!(v["member"], "8e9e05c52164694d");
        assert_eq!(v["field.level"], "x");
        assert_eq!(v["urls"], serde_json::json!(["http://127.0.0.1:2379"]));
        assert!(v["caller"].as_str().unwrap().contains("log.rs:"), "{v}");
        let ts = v["ts"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    }

    #[test]
    fn levels_and_formats_are_etcds() {
        assert_eq!(parse_level("warn"), Ok(Level::WARN));
        assert_eq!(parse_level("fatal"), Ok(Level::ERROR));
        assert!(parse_level("verbose").is_err());
        assert_eq!(LogFormat::parse("console"), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse("json"), Ok(LogFormat::Json));
        assert!(LogFormat::parse("xml").is_err());
    }
}
