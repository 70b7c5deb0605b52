//! What a run shows a person: the commands it runs, one line per step with its duration, and a
//! summary table at the end. On a terminal a spinner turns next to the running step; elsewhere
//! (CI, a pipe, a log file) every line is plain. Tests keep the lines in memory.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Where lines go.
pub(crate) enum Output {
    /// Plain lines on stderr.
    Plain,
    /// Lines on stderr and a spinner next to the running step.
    Terminal(Spinner),
    /// Lines kept for a test to read (child processes' output is captured, not shown).
    #[cfg_attr(not(test), allow(dead_code))]
    Memory(RefCell<Vec<String>>),
}

impl Output {
    /// A spinner when stderr is a terminal and this is not CI; plain lines otherwise.
    pub(crate) fn for_stderr(ci: bool) -> Output {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() && !ci { Output::Terminal(Spinner::default()) } else { Output::Plain }
    }

    pub(crate) fn line(&self, line: &str) {
        match self {
            Output::Plain => eprintln!("{line}"),
            Output::Terminal(spinner) => spinner.print(line),
            Output::Memory(lines) => lines.borrow_mut().push(line.to_owned()),
        }
    }

    pub(crate) fn is_memory(&self) -> bool {
        matches!(self, Output::Memory(_))
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn lines(&self) -> Vec<String> {
        match self {
            Output::Memory(lines) => lines.borrow().clone(),
            _ => Vec::new(),
        }
    }

    fn spin(&self, label: Option<&str>) {
        if let Output::Terminal(spinner) = self {
            spinner.set_label(label);
        }
    }

    /// Hides the spinner while a child process writes to the terminal itself.
    pub(crate) fn hold(&self, held: bool) {
        if let Output::Terminal(spinner) = self {
            spinner.hold(held);
        }
    }
}

/// The spinner: a thread, started with the first step, that redraws `⠋ step 12 s` on the last
/// line every tenth of a second.
#[derive(Default)]
pub(crate) struct Spinner {
    state: Arc<Mutex<SpinState>>,
}

#[derive(Default)]
struct SpinState {
    label: Option<(String, Instant)>,
    held: bool,
    drawn: bool,
    started: bool,
    stopped: bool,
}

impl Spinner {
    fn start_thread(&self) {
        let shared = Arc::clone(&self.state);
        thread::spawn(move || {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            for frame in FRAMES.iter().cycle() {
                thread::sleep(Duration::from_millis(100));
                let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                if state.stopped {
                    break;
                }
                if let (Some((label, started)), false) = (&state.label, state.held) {
                    eprint!("\r\x1b[2K{frame} {label} {:.0} s", started.elapsed().as_secs_f64());
                    let _ = std::io::stderr().flush();
                    state.drawn = true;
                }
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpinState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn print(&self, line: &str) {
        let mut state = self.lock();
        clear(&mut state);
        eprintln!("{line}");
    }

    fn set_label(&self, label: Option<&str>) {
        let mut state = self.lock();
        clear(&mut state);
        state.label = label.map(|label| (label.to_owned(), Instant::now()));
        if state.label.is_some() && !state.started {
            state.started = true;
            self.start_thread();
        }
    }

    fn hold(&self, held: bool) {
        let mut state = self.lock();
        clear(&mut state);
        state.held = held;
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        let mut state = self.lock();
        clear(&mut state);
        state.stopped = true;
    }
}

fn clear(state: &mut SpinState) {
    if state.drawn {
        eprint!("\r\x1b[2K");
        state.drawn = false;
    }
}

/// A step that failed: its name and why.
#[derive(Debug)]
pub(crate) struct StepError {
    pub(crate) step: &'static str,
    pub(crate) message: String,
}

/// The steps of one command, timed, for the summary.
pub(crate) struct Steps<'a> {
    output: &'a Output,
    rows: Vec<(&'static str, String, Option<Duration>)>,
    started: Instant,
}

impl<'a> Steps<'a> {
    pub(crate) fn new(output: &'a Output) -> Steps<'a> {
        Steps { output, rows: Vec::new(), started: Instant::now() }
    }

    /// Runs one step: announces it, times it, records how it ended.
    pub(crate) fn run<T>(
        &mut self,
        name: &'static str,
        step: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, StepError> {
        self.output.line(&format!("==> {name}"));
        self.output.spin(Some(name));
        let started = Instant::now();
        let result = step();
        let took = started.elapsed();
        self.output.spin(None);
        let outcome = if result.is_ok() { "ok" } else { "FAILED" };
        self.output.line(&format!("<== {name}: {outcome} ({})", seconds(took)));
        self.rows.push((name, outcome.to_owned(), Some(took)));
        result.map_err(|message| StepError { step: name, message })
    }

    /// Records a step that ran before these steps could start (it made their context), as it
    /// ended and with the time it took.
    pub(crate) fn ran_before(&mut self, name: &'static str, ok: bool, took: Duration) {
        self.rows.push((name, if ok { "ok" } else { "FAILED" }.to_owned(), Some(took)));
    }

    /// Records a step that did not run, and why.
    pub(crate) fn skip(&mut self, name: &'static str, why: &str) {
        self.output.line(&format!("==> {name}: skipped ({why})"));
        self.rows.push((name, "skipped".to_owned(), None));
    }

    /// Ends the run: the summary table, then the result with the failed step named.
    pub(crate) fn finish(self, result: Result<(), StepError>) -> Result<(), String> {
        self.summary();
        result.map_err(|failed| format!("step `{}` failed: {}", failed.step, failed.message))
    }

    /// The table that ends every run.
    pub(crate) fn summary(&self) {
        let width = self.rows.iter().map(|(name, _, _)| name.len()).max().unwrap_or(0).max("total".len());
        self.output.line("== summary");
        self.output.line(&format!("{:<width$}  {:<8}  {:>9}", "step", "result", "time"));
        for (name, outcome, took) in &self.rows {
            let took = took.map(seconds).unwrap_or_default();
            self.output.line(&format!("{name:<width$}  {outcome:<8}  {took:>9}"));
        }
        self.output.line(&format!("{:<width$}  {:<8}  {:>9}", "total", "", seconds(self.started.elapsed())));
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_timed_and_summed_up_in_a_table() {
        let output = Output::Memory(RefCell::default());
        let mut steps = Steps::new(&output);
        assert_eq!(steps.run("first", || Ok(1)).unwrap(), 1);
        steps.skip("second", "not asked");
        let failed = steps.run("third", || Err::<(), _>("broken".to_owned())).unwrap_err();
        assert_eq!((failed.step, failed.message.as_str()), ("third", "broken"));
        steps.summary();
        let lines = output.lines();
        assert_eq!(lines[0], "==> first");
        assert!(lines[1].starts_with("<== first: ok ("), "{lines:?}");
        assert_eq!(lines[2], "==> second: skipped (not asked)");
        assert!(lines[4].starts_with("<== third: FAILED ("), "{lines:?}");
        let table = &lines[lines.iter().position(|line| line == "== summary").unwrap() + 1..];
        assert!(table[0].starts_with("step "));
        assert!(table[1].starts_with("first   ok"), "{table:?}");
        assert!(table[2].starts_with("second  skipped"), "{table:?}");
        assert!(table[3].starts_with("third   FAILED"), "{table:?}");
        assert!(table[4].starts_with("total"), "{table:?}");
    }
}
