//! The audit log as a file: CSV (UTF-8 with a BOM so that Excel reads Chinese, headers in
//! zh-CN or English, as the other exports) or JSON lines (each stored entry as it is, hash
//! included, so a copy can be verified later with `cistern audit verify --file`).

use super::audit::AuditEntry;

/// An export's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Jsonl => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }
}

/// The CSV headers: (English, 中文).
const HEADERS: [(&str, &str); 11] = [
    ("Time (UTC)", "时间 (UTC)"),
    ("Source address", "来源地址"),
    ("User", "用户"),
    ("Category", "类别"),
    ("Action", "操作"),
    ("Object", "对象"),
    ("Result", "结果"),
    ("Detail", "详情"),
    ("Sequence", "序号"),
    ("Previous hash", "前一条哈希"),
    ("Hash", "哈希"),
];

fn time(ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// Why an export could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit export: {0}")]
pub struct ExportError(String);

/// The entries as `format`; CSV headers in Chinese unless `english`.
pub fn render(
    entries: &[AuditEntry],
    format: ExportFormat,
    english: bool,
) -> Result<Vec<u8>, ExportError> {
    match format {
        ExportFormat::Jsonl => {
            let mut out = Vec::new();
            for e in entries {
                serde_json::to_writer(&mut out, e).map_err(|e| ExportError(e.to_string()))?;
                out.push(b'\n');
            }
            Ok(out)
        }
        ExportFormat::Csv => {
            let mut w = csv::WriterBuilder::new().from_writer(vec![0xEF, 0xBB, 0xBF]);
            w.write_record(HEADERS.iter().map(|(en, zh)| if english { en } else { zh }))
                .map_err(|e| ExportError(e.to_string()))?;
            for e in entries {
                let seq = e.seq.map(|s| s.to_string()).unwrap_or_default();
                w.write_record([
                    time(e.at_ms).as_str(),
                    &e.source,
                    &e.user,
                    &e.category,
                    &e.action,
                    &e.target,
                    &e.result,
                    &e.detail,
                    &seq,
                    &e.prev,
                    &e.hash,
                ])
                .map_err(|e| ExportError(e.to_string()))?;
            }
            w.into_inner().map_err(|e| ExportError(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_bom_and_headers_in_the_language_and_jsonl_round_trips() {
        let mut e = AuditEntry::now("张三", "alarm_ack", "XM-0001/a", "好的, \"done\"", true);
        e.at_ms = 1_000;
        let csv = render(std::slice::from_ref(&e), ExportFormat::Csv, false).unwrap();
        assert_eq!(&csv[..3], &[0xEF, 0xBB, 0xBF]);
        let text = String::from_utf8(csv[3..].to_vec()).unwrap();
        assert!(
            text.starts_with("时间 (UTC),来源地址,用户,类别,操作"),
            "{text}"
        );
        assert!(
            text.contains("1970-01-01T00:00:01.000Z,,张三,alarm,alarm_ack"),
            "{text}"
        );
        let en = render(std::slice::from_ref(&e), ExportFormat::Csv, true).unwrap();
        assert!(String::from_utf8_lossy(&en).contains("Time (UTC),Source address"));
        let jsonl = render(&[e.clone(), e.clone()], ExportFormat::Jsonl, false).unwrap();
        let lines: Vec<AuditEntry> = String::from_utf8(jsonl)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, [e.clone(), e]);
    }
}
