//! The log tail: a bounded buffer of lines, a pluggable filter, and a
//! viewport over them.
//!
//! The logs view must stay fast with a million lines buffered, so nothing
//! here is proportional to the buffer per frame: lines are stored compactly
//! and never re-wrapped, the filter is applied once per line as it arrives
//! (and once over the buffer when the filter changes), and the view reads
//! only the rows it shows, by index.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use schema::{LogRecord, Stream, Version};

/// Lines kept by default: enough for a long incident, bounded so a chatty app
/// cannot exhaust the memory of the gateway drawing many sessions.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// One buffered log line, smaller than a [`LogRecord`]: host and instance
/// names are shared, the app is implied by the buffer, and the time keeps
/// only the `HH:MM:SS.mmm` the view prints.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub seq: u64,
    /// `HH:MM:SS.mmm` (UTC), as cut from the record's RFC 3339 time.
    pub time: [u8; 12],
    pub host: Arc<str>,
    pub app: Arc<str>,
    /// The record's whole RFC 3339 time, for filters on `time`.
    pub stamp: Box<str>,
    pub instance: Arc<str>,
    pub release: Option<Version>,
    pub stream: Stream,
    pub partial: bool,
    pub text: Box<str>,
}

impl LogLine {
    pub fn time_str(&self) -> &str {
        std::str::from_utf8(&self.time).unwrap_or("")
    }
}

/// Decides which lines the logs view shows.
///
/// The console ships [`Substring`]; the filter expression language
/// (`level >= warn && msg ~ "timeout"`) plugs in here by implementing this
/// trait and installing a parser with [`crate::App::with_filter_parser`].
pub trait LineFilter: Send + Sync {
    fn matches(&self, line: &LogLine) -> bool;
    /// What the operator typed, shown in the view's title.
    fn describe(&self) -> &str;
    /// An expression for `logs --where` when the filter can run where the
    /// records are made (so only matching lines cross the tunnel). The
    /// console still applies [`matches`](Self::matches) to what arrives.
    fn remote_expr(&self) -> Option<String> {
        None
    }
}

/// Builds a filter from what was typed after `/`, or says why it can't.
pub type FilterParser = fn(&str) -> Result<Box<dyn LineFilter>, FilterError>;

/// Why a `/` filter does not parse, and where: shown in the open prompt,
/// the offending character marked, as the CLI's caret does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub message: String,
    /// 1-based column (in characters) of the first offending character.
    pub column: Option<usize>,
}

impl From<String> for FilterError {
    fn from(message: String) -> FilterError {
        FilterError {
            message,
            column: None,
        }
    }
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.column {
            Some(c) => write!(f, "at column {c}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The default [`FilterParser`]: an expression of the filter language
/// when the text is one (`level >= warn && msg ~ "timeout"`), evaluated here
/// with the reference interpreter and sent to the hosts as `--where` so only
/// matching lines cross the tunnels; otherwise a plain substring. Text with
/// an operator in it must parse: a typo is an error with its position, not
/// silently a substring search.
pub fn expression_or_substring(text: &str) -> Result<Box<dyn LineFilter>, FilterError> {
    match schema::expr::parse_filter(text) {
        Ok(filter) => Ok(Box::new(Expression {
            typed: text.to_string(),
            filter,
        })),
        Err(e) if looks_like_expression(text) => Err(FilterError {
            message: e.message.clone(),
            column: (e.line == 1).then_some(e.column),
        }),
        Err(_) => substring_filter(text),
    }
}

fn looks_like_expression(text: &str) -> bool {
    // ` = ` (spaced) is a mistyped `==`; `key=value` stays text to find.
    ["==", "!=", "<", ">", "~", "&&", "||", " contains ", " = "]
        .iter()
        .any(|op| text.contains(op))
}

/// A filter-language expression over each line (as its log record).
pub struct Expression {
    typed: String,
    filter: schema::expr::Filter,
}

impl LineFilter for Expression {
    fn matches(&self, l: &LogLine) -> bool {
        let record = LogRecord {
            seq: l.seq,
            time: l.stamp.to_string(),
            host: l.host.to_string(),
            app: l.app.to_string(),
            release: l.release,
            instance: l.instance.to_string(),
            stream: l.stream,
            line: l.text.to_string(),
            partial: l.partial,
        };
        self.filter.matches(&record)
    }
    fn describe(&self) -> &str {
        &self.typed
    }
    fn remote_expr(&self) -> Option<String> {
        Some(self.filter.source().to_string())
    }
}

/// A plain substring as a [`FilterParser`].
pub fn substring_filter(text: &str) -> Result<Box<dyn LineFilter>, FilterError> {
    Ok(Box::new(Substring::new(text)?))
}

/// A plain substring of the line, its host, instance or stream, with smart
/// case: case-insensitive unless the pattern has an upper-case letter.
///
/// Matching runs on the `regex` crate's literal search (SIMD prefilters),
/// which is what keeps applying a filter to a million buffered lines short.
#[derive(Debug, Clone)]
pub struct Substring {
    typed: String,
    re: regex::Regex,
}

impl Substring {
    /// # Errors
    ///
    /// Only when the pattern is too long to compile (the regex size limit).
    pub fn new(pattern: &str) -> Result<Substring, String> {
        let ignore_case = !pattern.chars().any(char::is_uppercase);
        let re = regex::RegexBuilder::new(&regex::escape(pattern))
            .case_insensitive(ignore_case)
            .build()
            .map_err(|e| format!("pattern too long: {e}"))?;
        Ok(Substring {
            typed: pattern.to_string(),
            re,
        })
    }

    fn find(&self, hay: &str) -> bool {
        self.re.is_match(hay)
    }
}

impl LineFilter for Substring {
    fn matches(&self, l: &LogLine) -> bool {
        self.find(&l.text)
            || self.find(&l.host)
            || self.find(&l.instance)
            || self.find(l.stream.as_str())
    }
    fn describe(&self) -> &str {
        &self.typed
    }
}

/// The buffered lines of one app, the active filter, and where the view is.
///
/// Lines are numbered from 0 in arrival order for the life of the buffer;
/// the oldest fall off the front when it is full. The filter keeps the
/// numbers of matching lines in order, so both the filtered and the
/// unfiltered view index a row in O(1).
pub struct LogBuffer {
    lines: VecDeque<LogLine>,
    capacity: usize,
    /// Bytes of text (line and time stamp) the buffer may hold, whatever the
    /// line count: long lines must not make a session's memory unbounded.
    max_bytes: usize,
    bytes: usize,
    /// Number of the line at the front of `lines`.
    first: u64,
    filter: Option<Box<dyn LineFilter>>,
    /// Numbers of the buffered lines that match `filter`, oldest first.
    matches: VecDeque<u64>,
    /// Rows of the (filtered) view between the bottom of the viewport and
    /// the newest row; 0 while following.
    scroll_back: usize,
    paused: bool,
    /// Matching lines that arrived while paused.
    unseen: usize,
    /// Columns of long lines hidden on the left.
    pub h_offset: usize,
    /// Highest `seq` seen per host, to drop lines a re-follow resends.
    last_seq: HashMap<Arc<str>, u64>,
    names: HashMap<Box<str>, Arc<str>>,
    /// Widest host name seen, so the host column does not jump per frame.
    pub host_width: usize,
}

impl std::fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer")
            .field("len", &self.lines.len())
            .field(
                "filter",
                &self.filter.as_ref().map(|x| x.describe().to_string()),
            )
            .field("paused", &self.paused)
            .field("scroll_back", &self.scroll_back)
            .finish()
    }
}

impl LogBuffer {
    pub fn new(capacity: usize) -> LogBuffer {
        LogBuffer::with_budget(capacity, usize::MAX)
    }

    /// A buffer of at most `capacity` lines and `max_bytes` bytes of text
    /// (the oldest lines go first when either is reached; the newest line
    /// always stays).
    pub fn with_budget(capacity: usize, max_bytes: usize) -> LogBuffer {
        LogBuffer {
            lines: VecDeque::new(),
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            first: 0,
            filter: None,
            matches: VecDeque::new(),
            scroll_back: 0,
            paused: false,
            unseen: 0,
            h_offset: 0,
            last_seq: HashMap::new(),
            names: HashMap::new(),
            host_width: 4,
        }
    }

    /// Forgets every line (another app is being followed); keeps the filter.
    pub fn clear(&mut self) {
        let filter = self.filter.take();
        *self = LogBuffer::with_budget(self.capacity, self.max_bytes);
        self.filter = filter;
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.names.get(s) {
            return a.clone();
        }
        // Instance names churn with restarts; start over rather than grow
        // without bound. Lines keep their own Arcs.
        if self.names.len() > 4096 {
            self.names.clear();
        }
        let a: Arc<str> = Arc::from(s);
        self.names.insert(s.into(), a.clone());
        a
    }

    /// Appends records, dropping any already seen. Returns how many were kept.
    pub fn push(&mut self, records: impl IntoIterator<Item = LogRecord>) -> usize {
        let mut kept = 0;
        for r in records {
            let host = self.intern(&r.host);
            let last = self.last_seq.entry(host.clone()).or_insert(0);
            if r.seq != 0 && r.seq <= *last {
                continue;
            }
            *last = r.seq;
            let mut time = *b"            ";
            if let Some(t) = r.time.get(11..23) {
                time.copy_from_slice(t.as_bytes());
            }
            self.host_width = self.host_width.max(host.chars().count().min(24));
            let line = LogLine {
                seq: r.seq,
                time,
                host,
                app: self.intern(&r.app),
                stamp: r.time.as_str().into(),
                instance: self.intern(&r.instance),
                release: r.release,
                stream: r.stream,
                partial: r.partial,
                text: clean(r.line).into_boxed_str(),
            };
            self.append(line);
            kept += 1;
        }
        kept
    }

    fn line_bytes(line: &LogLine) -> usize {
        line.text.len() + line.stamp.len() + std::mem::size_of::<LogLine>()
    }

    fn append(&mut self, line: LogLine) {
        let size = Self::line_bytes(&line);
        while !self.lines.is_empty()
            && (self.lines.len() >= self.capacity || self.bytes + size > self.max_bytes)
        {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= Self::line_bytes(&old);
            }
            if self.matches.front() == Some(&self.first) {
                self.matches.pop_front();
            }
            self.first += 1;
        }
        self.bytes += size;
        let number = self.first + self.lines.len() as u64;
        let shown = self.filter.as_ref().is_none_or(|f| f.matches(&line));
        self.lines.push_back(line);
        if self.filter.is_some() && shown {
            self.matches.push_back(number);
        }
        if shown && self.paused {
            // Keep the rows on screen where they are.
            self.scroll_back += 1;
            self.unseen += 1;
        }
        self.scroll_back = self.scroll_back.min(self.len().saturating_sub(1));
    }

    /// Installs (or, with `None`, removes) the filter: one pass over the
    /// buffer. The view jumps to the newest matching line.
    pub fn set_filter(&mut self, filter: Option<Box<dyn LineFilter>>) {
        self.matches.clear();
        if let Some(f) = &filter {
            let first = self.first;
            self.matches.extend(
                self.lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| f.matches(l))
                    .map(|(i, _)| first + i as u64),
            );
        }
        self.filter = filter;
        self.scroll_back = 0;
        self.unseen = 0;
    }

    pub fn filter(&self) -> Option<&dyn LineFilter> {
        self.filter.as_deref()
    }

    /// Lines buffered, matching or not.
    pub fn total(&self) -> usize {
        self.lines.len()
    }

    /// Rows of the view: matching lines, or every line without a filter.
    pub fn len(&self) -> usize {
        if self.filter.is_some() {
            self.matches.len()
        } else {
            self.lines.len()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` of the view, oldest first.
    pub fn row(&self, i: usize) -> Option<&LogLine> {
        if self.filter.is_some() {
            let n = *self.matches.get(i)?;
            self.lines.get((n - self.first) as usize)
        } else {
            self.lines.get(i)
        }
    }

    /// The rows a viewport of `height` shows now, oldest first: the only
    /// lines a frame touches.
    pub fn visible(&self, height: usize) -> impl Iterator<Item = &LogLine> {
        let end = self.len().saturating_sub(self.scroll_back);
        let start = end.saturating_sub(height);
        (start..end).filter_map(move |i| self.row(i))
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Matching lines that arrived since the view was paused.
    pub fn unseen(&self) -> usize {
        self.unseen
    }

    pub fn scroll_back(&self) -> usize {
        self.scroll_back
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        if !paused {
            self.scroll_back = 0;
            self.unseen = 0;
        }
    }

    /// Scrolls towards older lines, pausing so arriving lines do not move them.
    pub fn scroll_up(&mut self, rows: usize, height: usize) {
        self.paused = true;
        let max = self.len().saturating_sub(height.max(1));
        self.scroll_back = (self.scroll_back + rows).min(max);
    }

    /// Scrolls towards newer lines; reaching the bottom does not resume
    /// following by itself (End does), so a paused read is not yanked away.
    pub fn scroll_down(&mut self, rows: usize) {
        self.scroll_back = self.scroll_back.saturating_sub(rows);
    }

    pub fn scroll_to_top(&mut self, height: usize) {
        self.paused = true;
        self.scroll_back = self.len().saturating_sub(height.max(1));
    }
}

/// Makes a line safe and cheap to draw: terminal escape sequences (colours
/// an app printed) are removed and other control characters become spaces,
/// once on arrival rather than on every frame.
fn clean(line: String) -> String {
    if !line.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return line;
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ params final-byte; anything else: drop the ESC.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rec(seq: u64, host: &str, line: &str) -> LogRecord {
        LogRecord {
            seq,
            time: "2026-01-02T10:11:12.345Z".into(),
            host: host.into(),
            app: "api".into(),
            release: Some(Version(3)),
            instance: "i-1".into(),
            stream: Stream::Stdout,
            line: line.into(),
            partial: false,
        }
    }

    #[test]
    fn slash_takes_the_filter_language_and_pushes_it_to_the_hosts() {
        let mut b = LogBuffer::new(100);
        let mut warn = rec(2, "h2", r#"{"level":"warn","msg":"upstream timeout"}"#);
        warn.stream = Stream::Stderr;
        b.push(vec![rec(1, "h1", "plain line"), warn]);
        let f =
            expression_or_substring(r#"level >= warn && msg ~ "timeout" && app == "api""#).unwrap();
        assert_eq!(
            f.remote_expr().as_deref(),
            Some(r#"level >= warn && msg ~ "timeout" && app == "api""#)
        );
        b.set_filter(Some(f));
        assert_eq!(b.len(), 1);
        assert_eq!(b.row(0).unwrap().seq, 2);
        // A plain word is still a substring, searched here only.
        let f = expression_or_substring("plain").unwrap();
        assert!(f.remote_expr().is_none());
        b.set_filter(Some(f));
        assert_eq!(b.row(0).unwrap().seq, 1);
        // Text with an operator must parse: the error names the position.
        let e = expression_or_substring("stream == ").err().unwrap();
        assert_eq!(e.column, Some(11), "{e}");
    }

    #[test]
    fn full_buffer_drops_oldest_and_keeps_filter_indices_right() {
        let mut b = LogBuffer::new(3);
        b.set_filter(Some(Box::new(Substring::new("x").unwrap())));
        b.push((1..=5).map(|i| rec(i, "h", if i % 2 == 1 { "x" } else { "y" })));
        assert_eq!(b.total(), 3);
        let seqs: Vec<u64> = b.visible(10).map(|l| l.seq).collect();
        assert_eq!(seqs, vec![3, 5]);
        assert_eq!(b.row(0).unwrap().time_str(), "10:11:12.345");
    }

    #[test]
    fn escape_sequences_and_tabs_are_cleaned_on_arrival() {
        let mut b = LogBuffer::new(1);
        b.push([rec(1, "h", "\x1b[31mred\x1b[0m\tdone\r")]);
        assert_eq!(&*b.row(0).unwrap().text, "red done ");
    }

    #[test]
    fn resent_records_are_dropped_per_host() {
        let mut b = LogBuffer::new(10);
        assert_eq!(
            b.push([rec(1, "a", "1"), rec(2, "a", "2"), rec(1, "b", "1")]),
            3
        );
        assert_eq!(
            b.push([rec(2, "a", "2"), rec(3, "a", "3"), rec(1, "b", "1")]),
            1
        );
    }

    #[test]
    fn smart_case_is_insensitive_only_for_lower_case_patterns() {
        let l = |t: &str| {
            let mut b = LogBuffer::new(1);
            b.push([rec(1, "h", t)]);
            b.row(0).unwrap().clone()
        };
        assert!(
            Substring::new("timeout")
                .unwrap()
                .matches(&l("read TIMEOUT after 5s"))
        );
        assert!(
            !Substring::new("Timeout")
                .unwrap()
                .matches(&l("read TIMEOUT after 5s"))
        );
        assert!(
            Substring::new("TIMEOUT")
                .unwrap()
                .matches(&l("read TIMEOUT after 5s"))
        );
        assert!(!Substring::new("timeouts").unwrap().matches(&l("timeout")));
    }

    #[test]
    fn a_byte_budget_drops_the_oldest_lines_whatever_the_count() {
        let mut b = LogBuffer::with_budget(1_000_000, 64 * 1024);
        let long = "x".repeat(16 * 1024);
        for seq in 1..=100 {
            b.push(vec![rec(seq, "h1", &long)]);
        }
        assert!(b.len() <= 4, "{} lines of 16 KiB kept in 64 KiB", b.len());
        assert!(b.len() >= 3);
        // One line over the whole budget is still shown (alone).
        b.push(vec![rec(101, "h1", &"y".repeat(100 * 1024))]);
        assert_eq!(b.len(), 1);
    }
}
