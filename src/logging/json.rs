//! One JSON object per log line, written straight into the line buffer.
//!
//! Same shape as `tracing_subscriber`'s JSON format with the current span:
//! `{"timestamp":…,"level":…,"fields":{…},"target":…,"span":{…,"name":…}}`. That format
//! collects every field into a map of `serde_json::Value`s and parses each span's fields
//! back from text for every line; at one access-log line per request this was a tenth of
//! the server's CPU per token.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Writes `s` as a JSON string literal.
fn write_json_str(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(s)?;
    out.write_char('"')
}

/// Passes text through JSON string escaping (quotes, backslashes, control characters), so
/// `Debug` and `Display` output can be written into a string literal without a copy.
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escaped = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escaped.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escaped)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

/// Writes fields as `"name":value` pairs separated by commas (no braces).
struct FieldWriter<'a, W: fmt::Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<'a, W: fmt::Write> FieldWriter<'a, W> {
    fn new(out: &'a mut W) -> Self {
        Self {
            out,
            first: true,
            result: Ok(()),
        }
    }

    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.out.write_char(',')?;
            }
            write_json_str(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl<W: fmt::Write> Visit for FieldWriter<'_, W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.entry(field, |o| write!(o, "{value}"));
        } else {
            self.entry(field, |o| write_json_str(o, &value.to_string()));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |o| write!(o, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |o| write!(o, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |o| write!(o, "{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |o| write_json_str(o, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `message` and `%display` fields arrive here.
        self.entry(field, |o| {
            o.write_char('"')?;
            write!(Escaped(o), "{value:?}")?;
            o.write_char('"')
        });
    }
}

/// Span fields, stored once per span as the text of JSON object members (`"a":1,"b":"x"`,
/// no braces), so each line copies them as they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonFields;

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = FieldWriter::new(&mut writer);
        fields.record(&mut v);
        v.result
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut added = String::new();
        let mut v = FieldWriter::new(&mut added);
        fields.record(&mut v);
        v.result?;
        if !added.is_empty() {
            if !current.fields.is_empty() {
                current.fields.push(',');
            }
            current.fields.push_str(&added);
        }
        Ok(())
    }
}

/// The event format; see the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut w)?;
        write!(w, "\",\"level\":\"{}\",\"fields\":{{", meta.level())?;
        let mut v = FieldWriter::new(&mut w);
        event.record(&mut v);
        v.result?;
        w.write_str("},\"target\":")?;
        write_json_str(&mut w, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            w.write_str(",\"span\":{")?;
            let ext = span.extensions();
            if let Some(fields) = ext.get::<FormattedFields<JsonFields>>()
                && !fields.fields.is_empty()
            {
                w.write_str(&fields.fields)?;
                w.write_char(',')?;
            }
            w.write_str("\"name\":")?;
            write_json_str(&mut w, span.name())?;
            w.write_char('}')?;
        }
        w.write_str("}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::Collect;

    fn lines(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let out = Collect::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields)
            .event_format(JsonLines)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn lines_are_json_with_fields_target_and_span() {
        let got = lines(|| {
            let span = tracing::info_span!("request", request_id = "r1", route = %"/token");
            span.in_scope(|| {
                tracing::info!(status = 200_u16, latency_ms = 1.5, ok = true, "request");
            });
            tracing::warn!(n = -3_i64, "outside");
        });
        assert_eq!(got.len(), 2);
        let a = &got[0];
        assert_eq!(a["level"], "INFO");
        assert_eq!(a["fields"]["message"], "request");
        assert_eq!(a["fields"]["status"], 200);
        assert_eq!(a["fields"]["latency_ms"], 1.5);
        assert_eq!(a["fields"]["ok"], true);
        assert_eq!(a["target"], module_path!());
        assert_eq!(a["span"]["request_id"], "r1");
        assert_eq!(a["span"]["route"], "/token");
        assert_eq!(a["span"]["name"], "request");
        assert!(a["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(got[1]["fields"]["n"], -3);
        assert!(got[1].get("span").is_none());
    }

    #[test]
    fn hostile_text_cannot_break_out_of_its_string() {
        let nasty = "a\"}\n{\"level\":\"ERROR\"\\\u{1}\u{7f}é";
        let got = lines(|| {
            let span = tracing::info_span!("s", id = nasty);
            span.in_scope(|| tracing::info!(value = nasty, "{nasty}"));
        });
        assert_eq!(got.len(), 1, "one line, however hostile the text");
        assert_eq!(got[0]["fields"]["value"], nasty);
        assert_eq!(got[0]["fields"]["message"], nasty);
        assert_eq!(got[0]["span"]["id"], nasty);
        assert_eq!(got[0]["level"], "INFO");
    }

    #[test]
    fn non_finite_numbers_stay_valid_json() {
        let got = lines(|| tracing::info!(x = f64::NAN, y = f64::INFINITY, "n"));
        assert_eq!(got[0]["fields"]["x"], "NaN");
        assert_eq!(got[0]["fields"]["y"], "inf");
    }

    #[test]
    fn fields_recorded_later_join_the_span() {
        let got = lines(|| {
            let span = tracing::info_span!("s", a = 1_u64, b = tracing::field::Empty);
            span.record("b", "two");
            span.in_scope(|| tracing::info!("x"));
            let bare = tracing::info_span!("t", c = tracing::field::Empty);
            bare.record("c", 3_u64);
            bare.in_scope(|| tracing::info!("y"));
        });
        assert_eq!(got[0]["span"]["a"], 1);
        assert_eq!(got[0]["span"]["b"], "two");
        assert_eq!(got[1]["span"]["c"], 3);
    }
}
