/// How a report is written: `text` fits in an email, `html` is one self-contained file,
/// `json` and `csv` (one row per new incident) feed other tools.
public enum ReportFormat: String, CaseIterable, Sendable {
    case text, html, json, csv
}

extension Report {
    /// The report in `format`.
    public func rendered(as format: ReportFormat) -> String {
        switch format {
        case .text: text
        case .html: html
        case .json: json
        case .csv: csv
        }
    }
}
