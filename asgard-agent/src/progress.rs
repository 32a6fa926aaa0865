//! Progress of a backup run: files and bytes done out of what the scan has found so far.
//!
//! The totals grow while the scanner walks ([`Progress::add_total`]) and the reader adds what it
//! finished ([`Progress::add_done`]), so the bar's length grows during the scan and the ETA
//! settles once the scan is through. The counters are always kept; the bar is drawn only on a
//! terminal (stderr) and never in `--json` mode, so logs and pipes stay clean.
//!
//! A `Progress` is cheap to clone and can be shared with the scanner and reader threads.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use asgard_core::Lang;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

#[derive(Debug, Default)]
struct Counters {
    files_total: AtomicU64,
    files_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
}

/// The counters at one moment (the tests read them; the bar draws from the counters directly).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Snapshot {
    pub(crate) files_total: u64,
    pub(crate) files_done: u64,
    pub(crate) bytes_total: u64,
    pub(crate) bytes_done: u64,
}

#[derive(Clone)]
pub struct Progress {
    counters: Arc<Counters>,
    /// `None`: nothing is drawn.
    bar: Option<ProgressBar>,
}

/// Whether a bar is drawn: only on a terminal, and never when the output is JSON.
pub(crate) fn should_draw(stderr_is_terminal: bool, json: bool) -> bool {
    stderr_is_terminal && !json
}

impl Progress {
    /// A progress display for this process: a bar on stderr if [`should_draw`] says so.
    pub(crate) fn for_run(json: bool, lang: Lang) -> Progress {
        Progress::new(should_draw(std::io::stderr().is_terminal(), json), lang)
    }

    /// Counters only, no bar.
    pub fn hidden() -> Progress {
        Progress {
            counters: Arc::default(),
            bar: None,
        }
    }

    /// Counters, and a bar on stderr when `draw`.
    pub(crate) fn new(draw: bool, lang: Lang) -> Progress {
        let mut p = Progress::hidden();
        if draw {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(style(p.counters.clone(), lang));
            bar.enable_steady_tick(Duration::from_millis(200));
            p.bar = Some(bar);
        }
        p
    }

    /// Whether a bar is being drawn.
    #[cfg(test)]
    pub(crate) fn is_drawn(&self) -> bool {
        self.bar.is_some()
    }

    /// The scanner found `files` more files with `bytes` more content to look at.
    pub(crate) fn add_total(&self, files: u64, bytes: u64) {
        self.counters
            .files_total
            .fetch_add(files, Ordering::Relaxed);
        self.counters
            .bytes_total
            .fetch_add(bytes, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc_length(bytes);
        }
    }

    /// The reader finished `files` files and `bytes` bytes (read, or found unchanged).
    pub(crate) fn add_done(&self, files: u64, bytes: u64) {
        self.counters.files_done.fetch_add(files, Ordering::Relaxed);
        self.counters.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Snapshot {
        let c = &self.counters;
        Snapshot {
            files_total: c.files_total.load(Ordering::Relaxed),
            files_done: c.files_done.load(Ordering::Relaxed),
            bytes_total: c.bytes_total.load(Ordering::Relaxed),
            bytes_done: c.bytes_done.load(Ordering::Relaxed),
        }
    }

    /// Prints a line to stderr without tearing the bar.
    pub(crate) fn eprintln(&self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Prints a line to stdout without tearing the bar.
    pub(crate) fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// Removes the bar (the summary follows on stdout).
    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// How long a run must have gone on before its remaining time is estimated: until then the rate
/// is mostly start-up (scan, connection, the first batch), and a sub-second run would show
/// minutes.
const ETA_AFTER: Duration = Duration::from_secs(2);

/// The remaining time worth showing, from the average rate of the whole run so far, or `None`
/// while it would be a guess: before [`ETA_AFTER`], before the first byte, or when all known
/// bytes are done. (indicatif's own estimate weights the first moments heavily.)
fn remaining(elapsed: Duration, done: u64, total: u64) -> Option<Duration> {
    if elapsed < ETA_AFTER || done == 0 || done >= total {
        return None;
    }
    let secs = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
    Some(Duration::from_secs_f64(secs.ceil().min(360_000.0)))
}

/// A remaining time for people: `7 s`, `3 min 05 s`, `2 h 10 min`.
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s / 60 % 60),
    }
}

fn style(counters: Arc<Counters>, lang: Lang) -> ProgressStyle {
    let files_label = lang.pick("Dateien", "files");
    let template = format!(
        "{{spinner}} {files_label} {{files}} [{{wide_bar}}] {{bytes}}/{{total_bytes}} \
         {{binary_bytes_per_sec}}{{rest}}"
    );
    let eta_label = lang.pick("Rest", "ETA");
    let files = counters.clone();
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "files",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(
                    w,
                    "{}/{}",
                    files.files_done.load(Ordering::Relaxed),
                    files.files_total.load(Ordering::Relaxed)
                );
            },
        )
        .with_key(
            "rest",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let done = counters.bytes_done.load(Ordering::Relaxed);
                let total = counters.bytes_total.load(Ordering::Relaxed);
                if let Some(d) = remaining(state.elapsed(), done, total) {
                    let _ = write!(w, " {eta_label} {}", duration_text(d));
                }
            },
        )
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bar_off_a_terminal_or_in_json_mode() {
        assert!(!should_draw(false, false));
        assert!(!should_draw(true, true));
        assert!(!should_draw(false, true));
        assert!(should_draw(true, false));
        assert!(!Progress::new(should_draw(false, false), Lang::De).is_drawn());
        // Under `cargo test` stderr is captured or a pipe in CI; either way JSON mode never draws.
        assert!(!Progress::for_run(true, Lang::De).is_drawn());
    }

    #[test]
    fn totals_grow_while_scanning_and_done_follows() {
        let p = Progress::new(false, Lang::De);
        let q = p.clone();
        p.add_total(2, 300);
        q.add_done(1, 100);
        p.add_total(1, 50);
        q.add_done(2, 250);
        assert_eq!(
            p.snapshot(),
            Snapshot {
                files_total: 3,
                files_done: 3,
                bytes_total: 350,
                bytes_done: 350
            }
        );
        p.finish();
    }

    /// Regression (issue 12): a sub-second run's first estimate showed minutes.
    #[test]
    fn no_remaining_time_until_it_means_something() {
        let ms = Duration::from_millis;
        // The first ticks of a short run: no estimate, whatever the counters say.
        assert_eq!(remaining(ms(200), 1, 100_000_000), None);
        assert_eq!(remaining(ms(1999), 50, 100), None);
        assert_eq!(remaining(ms(5000), 0, 100), None);
        assert_eq!(remaining(ms(5000), 100, 100), None);
        // From the average rate of the run: 2 s for a quarter, 6 s for the rest.
        assert_eq!(remaining(ms(2000), 25, 100), Some(Duration::from_secs(6)));
        assert_eq!(remaining(ms(3000), 99, 100), Some(Duration::from_secs(1)));
        // Never absurd: at most 100 hours.
        assert_eq!(
            remaining(ms(2000), 1, u64::MAX),
            Some(Duration::from_secs(360_000))
        );
    }

    #[test]
    fn remaining_time_reads_like_a_duration() {
        let s = Duration::from_secs;
        assert_eq!(duration_text(s(7)), "7 s");
        assert_eq!(duration_text(s(185)), "3 min 05 s");
        assert_eq!(duration_text(s(7800)), "2 h 10 min");
    }

    #[test]
    fn drawn_bar_tracks_length_and_position() {
        // A bar drawing to a hidden target still keeps its state: check what it would show.
        let p = Progress::new(true, Lang::En);
        if let Some(b) = &p.bar {
            b.set_draw_target(ProgressDrawTarget::hidden());
        }
        p.add_total(4, 1000);
        p.add_done(1, 400);
        let b = p.bar.as_ref().unwrap();
        assert_eq!(b.length(), Some(1000));
        assert_eq!(b.position(), 400);
        p.finish();
        assert!(b.is_finished());
    }
}
