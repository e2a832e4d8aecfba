//! The burst's progress for the operator: a bar on a terminal, and elsewhere (a pipe,
//! a CI log) a plain line about every second. Both are drawn from one [`Snapshot`], so
//! the status text and the bar always tell the same moment.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed when the output is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(1);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar redrawn in place (stderr is a terminal).
    Bar,
    /// A plain line on stderr about every [`LINE_EVERY`].
    Lines,
}

impl Mode {
    /// A bar on a terminal (unless the output is JSON), lines otherwise.
    pub fn for_stderr(json: bool) -> Self {
        if !json && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Mode::Bar
        } else {
            Mode::Lines
        }
    }
}

/// Where the burst stands at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Containers running or failed.
    pub settled: usize,
    /// Containers in the burst.
    pub total: usize,
    /// Creates answered.
    pub answered: usize,
    /// Containers seen running.
    pub running: usize,
    /// Seconds since the first request.
    pub seconds: f64,
}

impl Snapshot {
    /// The status text: answered, running, failed, starts per second.
    pub fn status(&self) -> String {
        format!(
            "answered {}, running {}, failed {}, {:.0} starts/s",
            self.answered,
            self.running,
            self.settled - self.running,
            self.running as f64 / self.seconds.max(1e-3)
        )
    }
}

/// The progress display of one burst.
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Option<Box<dyn Write + Send>>,
    last_line: Option<Instant>,
}

impl Progress {
    /// Progress of `total` containers shown as `mode` says (lines go to stderr).
    pub fn new(mode: Mode, total: usize) -> Self {
        match mode {
            Mode::Bar => Self::bar(total, ProgressDrawTarget::stderr()),
            Mode::Lines => Self::lines(Box::new(std::io::stderr())),
        }
    }

    /// A bar drawn to `target`.
    pub fn bar(total: usize, target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        bar.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:40}] {pos}/{len} settled  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Progress {
            bar: Some(bar),
            lines: None,
            last_line: None,
        }
    }

    /// Plain lines written to `out`.
    pub fn lines(out: Box<dyn Write + Send>) -> Self {
        Progress {
            bar: None,
            lines: Some(out),
            last_line: None,
        }
    }

    /// Show `s`: the bar redrawn with position and text of the same moment, or a line
    /// if the last one is [`LINE_EVERY`] old.
    pub fn show(&mut self, s: &Snapshot) {
        if let Some(bar) = &self.bar {
            // Both first, then one draw: each setter draws on its own, and the draw
            // rate limit could drop the second, leaving the text a redraw behind.
            bar.set_message(s.status());
            bar.set_position(s.settled as u64);
            bar.force_draw();
        }
        if let Some(out) = &mut self.lines {
            if self.last_line.is_some_and(|t| t.elapsed() < LINE_EVERY) {
                return;
            }
            self.last_line = Some(Instant::now());
            let _ = writeln!(
                out,
                "berth-loadtest: {:>6.1} s  {}/{} settled, {}",
                s.seconds,
                s.settled,
                s.total,
                s.status()
            );
        }
    }

    /// Remove the bar (lines stay).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A terminal that keeps every line drawn.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.trim().is_empty() {
                self.0.lock().unwrap().push(s.to_owned());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn snapshot(k: usize) -> Snapshot {
        Snapshot {
            settled: k,
            total: 100,
            answered: k,
            running: k,
            seconds: 1.0,
        }
    }

    #[test]
    fn the_bar_and_its_text_tell_the_same_moment() {
        let screen = Screen::default();
        // A terminal's draw rate (20 Hz), with updates faster than that, as when
        // the burst loop catches up on ticks.
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(screen.clone()), 20);
        let mut p = Progress::bar(100, target);
        for k in 1..=60 {
            p.show(&snapshot(k));
            let last = screen.0.lock().unwrap().last().cloned().unwrap_or_default();
            assert!(
                last.contains(&format!("{k}/100 settled"))
                    && last.contains(&format!("answered {k},")),
                "after update {k} the screen shows {last:?}"
            );
        }
    }

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_come_at_most_about_once_a_second() {
        let buf = Buffer::default();
        let mut p = Progress::lines(Box::new(buf.clone()));
        for k in 1..=50 {
            p.show(&snapshot(k));
        }
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("1/100 settled, answered 1, running 1, failed 0"),
            "{text}"
        );
    }
}
