//! The report export producer: a background task that takes pending exports (woken when
//! one is created, and every [`POLL`] for those another instance created or a producer that
//! died left), has the engine compute each report, writes it as JSON, CSV or PDF and stores
//! the file (or why it failed). One producer per export at a time, across instances: the
//! store leases each claimed export (`EXPORT_LEASE`).

use std::time::Duration;

use licentia_core::engine::Report;
use licentia_core::model::{ExportFormat, Metadata};
use licentia_core::store::Store;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use crate::state::App;

/// How often the producer looks for pending exports without being woken.
pub const POLL: Duration = Duration::from_secs(5);

/// Starts the producer.
pub fn spawn<S: Store + 'static>(app: App<S>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            produce_pending(&app).await;
            tokio::select! {
                () = app.exports_notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

/// Produces every pending export; returns how many were finished.
pub async fn produce_pending<S: Store>(app: &App<S>) -> usize {
    let mut done = 0;
    loop {
        let (export, report) = match app.engine().produce_export().await {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return done,
            Err(e) => {
                tracing::warn!(error = %e, "report exports could not be claimed; retrying later");
                return done;
            }
        };
        let file = report.and_then(|r| render(export.format, &r));
        if let Err(reason) = &file {
            tracing::warn!(export = %export.id, %reason, "report export failed");
        }
        match app.engine().finish_export(&export.id, file).await {
            Ok(_) => done += 1,
            Err(e) => {
                // The lease runs out and the export is produced again.
                tracing::warn!(export = %export.id, error = %e, "report export not stored");
                return done;
            }
        }
    }
}

/// The file of `report` in `format`.
///
/// # Errors
///
/// A message when the report cannot be written (it is stored as the export's failure).
pub fn render(format: ExportFormat, report: &Report) -> Result<Vec<u8>, String> {
    match format {
        ExportFormat::Csv => csv_of(&report.rows),
        ExportFormat::Pdf => Ok(pdf_of(&report.rows)),
        _ => serde_json::to_vec_pretty(&report.data).map_err(|e| e.to_string()),
    }
}

/// The columns of `rows`: every key, in the order first seen.
fn columns(rows: &[Metadata]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for row in rows {
        for k in row.keys() {
            if !out.contains(&k.as_str()) {
                out.push(k);
            }
        }
    }
    out
}

fn cell(row: &Metadata, column: &str) -> String {
    match row.get(column) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn csv_of(rows: &[Metadata]) -> Result<Vec<u8>, String> {
    let columns = columns(rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&columns).map_err(|e| e.to_string())?;
    for row in rows {
        w.write_record(columns.iter().map(|c| cell(row, c)))
            .map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// Lines per A4 page at 9 pt.
const LINES_PER_PAGE: usize = 70;

/// A plain printable table: a header line, then one line per row (`column: value` pairs),
/// Helvetica 9 pt on A4 pages. Characters outside printable ASCII are shown as `?`.
fn pdf_of(rows: &[Metadata]) -> Vec<u8> {
    let columns = columns(rows);
    let mut lines = vec![format!("{} rows", rows.len())];
    lines.extend(rows.iter().map(|row| {
        columns
            .iter()
            .map(|c| format!("{c}: {}", cell(row, c)))
            .collect::<Vec<_>>()
            .join("  |  ")
    }));
    let ascii = |s: &str| -> Vec<u8> {
        s.chars()
            .take(180)
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c as u8
                } else {
                    b'?'
                }
            })
            .collect()
    };

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let font_name = Name(b"F1");
    let pages: Vec<&[String]> = lines.chunks(LINES_PER_PAGE).collect();
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(4 + 2 * i as i32))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(page_ids.len() as i32);
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    for (i, chunk) in pages.iter().enumerate() {
        let page_id = page_ids[i];
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
        page.parent(tree);
        page.contents(content_id);
        page.resources().fonts().pair(font_name, font);
        page.finish();
        let mut content = Content::new();
        content.begin_text();
        content.set_font(font_name, 9.0);
        content.set_leading(11.0);
        content.next_line(36.0, 806.0);
        for line in chunk.iter() {
            content.show(Str(&ascii(line)));
            content.next_line_using_leading();
        }
        content.end_text();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rows() -> Vec<Metadata> {
        let a = json!({"feature_code": "export", "units": 20});
        let b = json!({"feature_code": "say \"hi\", ok", "units": 4, "product_id": "prod_1"});
        [a, b]
            .into_iter()
            .map(|v| v.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn csv_has_a_header_of_every_column_and_quotes_what_needs_it() {
        let report = Report {
            data: json!({}),
            rows: rows(),
        };
        let text = String::from_utf8(render(ExportFormat::Csv, &report).unwrap()).unwrap();
        assert_eq!(
            text,
            "feature_code,units,product_id\nexport,20,\n\"say \"\"hi\"\", ok\",4,prod_1\n"
        );
    }

    #[test]
    fn pdf_is_a_pdf_with_a_page_per_seventy_lines() {
        let many: Vec<Metadata> = (0..150)
            .map(|i| json!({"n": i}).as_object().unwrap().clone())
            .collect();
        let report = Report {
            data: json!({}),
            rows: many,
        };
        let pdf = render(ExportFormat::Pdf, &report).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "a PDF header");
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 3"), "151 lines make three pages");
        assert!(text.trim_end().ends_with("%%EOF"));
    }

    #[test]
    fn json_is_the_report_data() {
        let report = Report {
            data: json!({"totals": {"units": 24}}),
            rows: vec![],
        };
        let v: serde_json::Value =
            serde_json::from_slice(&render(ExportFormat::Json, &report).unwrap()).unwrap();
        assert_eq!(v["totals"]["units"], 24);
    }
}
