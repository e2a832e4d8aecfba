//! `pull IMAGE`: the daemon's NDJSON progress shown as it comes — a progress bar per
//! layer on a terminal, plain lines otherwise (`--json`: the lines as they came) — and
//! a failure after the stream began (its last line, `status: error`) as an error.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};

use hyper::Method;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::Ctx;
use crate::args::PullArgs;
use crate::client::Lines;
use crate::error::CliError;
use crate::view::{short_digest, PullProgressView};

/// The route.
const PATH: &str = "/v1/images/pull";

/// A byte count in decimal megabytes, one decimal (`12.3`).
fn mb(n: u64) -> String {
    format!("{:.1}", n as f64 / 1e6)
}

/// Shows progress lines one way or another.
trait Show {
    /// Show one line (`raw`: as it came).
    fn show(&mut self, p: &PullProgressView, raw: &[u8]) -> Result<(), CliError>;
    /// The stream has ended (bars are left as they are).
    fn finish(&mut self) {}
}

/// `--json`: each line as it came.
struct Raw<'a>(&'a Ctx);

impl Show for Raw<'_> {
    fn show(&mut self, _: &PullProgressView, raw: &[u8]) -> Result<(), CliError> {
        self.0.raw_json(raw)
    }
}

/// Plain lines for a pipe or a file: a layer's download is shown at each tenth of it.
#[derive(Debug, Default)]
pub struct Plain {
    /// By layer: the last tenth of its download shown.
    shown: HashMap<String, u64>,
}

impl Plain {
    /// The line to print for `p`, if any.
    pub fn line(&mut self, p: &PullProgressView) -> Option<String> {
        let layer = p.layer.as_deref().map(short_digest).unwrap_or("?");
        match p.status.as_str() {
            "resolved" => Some(format!(
                "{}: manifest {} ({} layers)",
                p.reference.as_deref().unwrap_or("?"),
                p.manifest.as_deref().unwrap_or("?"),
                p.layers.unwrap_or(0)
            )),
            "downloading" => {
                let (current, total) = (p.current.unwrap_or(0), p.total.unwrap_or(0));
                // An empty layer is downloaded at once.
                let tenth = (current.min(total).saturating_mul(10))
                    .checked_div(total)
                    .unwrap_or(10);
                let last = self.shown.get(layer).copied();
                if last.is_some_and(|t| t >= tenth) {
                    return None;
                }
                self.shown.insert(layer.to_owned(), tenth);
                Some(format!(
                    "{layer} downloading {}/{} MB",
                    mb(current),
                    mb(total)
                ))
            }
            "exists" => Some(format!("{layer} exists")),
            "unpacked" => Some(format!("{layer} unpacked")),
            "done" => Some(pulled(p)),
            _ => None,
        }
    }
}

/// The last line of a pull: `Pulled NAME (id sha256:…)`.
fn pulled(p: &PullProgressView) -> String {
    format!(
        "Pulled {} (id {})",
        p.reference.as_deref().unwrap_or("?"),
        p.id.as_deref().unwrap_or("?")
    )
}

/// Plain lines, written to stdout.
struct PlainOut<'a>(&'a Ctx, Plain);

impl Show for PlainOut<'_> {
    fn show(&mut self, p: &PullProgressView, _: &[u8]) -> Result<(), CliError> {
        match self.1.line(p) {
            Some(line) => self.0.line(&line),
            None => Ok(()),
        }
    }
}

/// A progress bar per layer on the terminal.
struct Bars {
    all: MultiProgress,
    layers: HashMap<String, ProgressBar>,
    running: ProgressStyle,
    done: ProgressStyle,
}

impl Bars {
    fn new() -> Self {
        let running =
            ProgressStyle::with_template("{prefix} {bar:30} {bytes:>10}/{total_bytes:<10} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        let done = ProgressStyle::with_template("{prefix} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        Bars {
            all: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            layers: HashMap::new(),
            running: running.progress_chars("=> "),
            done,
        }
    }

    /// The bar of `layer` (made on first sight, `length` bytes long, in order of
    /// appearance).
    fn bar(&mut self, layer: &str, length: u64) -> &ProgressBar {
        let short = short_digest(layer).to_owned();
        self.layers.entry(layer.to_owned()).or_insert_with(|| {
            let bar = self.all.add(ProgressBar::new(length));
            bar.set_style(self.running.clone());
            bar.set_prefix(short);
            bar
        })
    }
}

impl Show for Bars {
    fn show(&mut self, p: &PullProgressView, _: &[u8]) -> Result<(), CliError> {
        let layer = p.layer.clone().unwrap_or_default();
        match p.status.as_str() {
            "resolved" => {
                let text = Plain::default().line(p).unwrap_or_default();
                let _ = self.all.println(text);
            }
            "downloading" => {
                let (current, total) = (p.current.unwrap_or(0), p.total.unwrap_or(0));
                let bar = self.bar(&layer, total);
                bar.set_length(total);
                bar.set_position(current);
                bar.set_message(if current >= total {
                    "downloaded"
                } else {
                    "downloading"
                });
            }
            "exists" => {
                let done = self.done.clone();
                let bar = self.bar(&layer, 0);
                bar.set_style(done);
                bar.finish_with_message("exists");
            }
            "unpacked" => {
                let bar = self.bar(&layer, 0);
                bar.set_position(bar.length().unwrap_or(0));
                bar.finish_with_message("unpacked");
            }
            "done" => {
                // Below the bars, which stay as they ended.
                self.finish();
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", pulled(p))?;
                out.flush()?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self) {
        for bar in self.layers.values().filter(|b| !b.is_finished()) {
            bar.abandon();
        }
    }
}

/// The password given on stdin (its first line, without the line break).
fn password_from_stdin() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| CliError::File {
            path: "--password-stdin".into(),
            source,
        })?;
    let password = text.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        return Err(CliError::Usage(
            "--password-stdin: stdin gave no password".into(),
        ));
    }
    Ok(password)
}

/// `pull [--user U --password-stdin] IMAGE`.
pub async fn pull(ctx: &Ctx, args: PullArgs) -> Result<u8, CliError> {
    let mut body = json!({ "reference": args.reference });
    if let Some(user) = &args.user {
        body["username"] = json!(user);
        body["password"] = json!(password_from_stdin()?);
    }
    let mut show: Box<dyn Show> = if ctx.json {
        Box::new(Raw(ctx))
    } else if std::io::stdout().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(PlainOut(ctx, Plain::default()))
    };
    let outcome = follow(ctx, &body, show.as_mut()).await;
    show.finish();
    outcome.map(|()| 0)
}

/// Send the pull and show its progress until `done`, or the error its stream ends with.
async fn follow(ctx: &Ctx, body: &serde_json::Value, show: &mut dyn Show) -> Result<(), CliError> {
    let request = format!("POST {PATH}");
    let resp = ctx.client.send(Method::POST, PATH, Some(body)).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut lines = Lines::default();
    if !status.is_success() {
        while let Some(chunk) = ctx.client.next_chunk(&request, &mut body).await? {
            lines.push(&chunk);
        }
        return Err(CliError::from_answer(
            status,
            &lines.rest().unwrap_or_default(),
        ));
    }
    loop {
        let chunk = ctx.client.next_chunk(&request, &mut body).await?;
        let ended = chunk.is_none();
        if let Some(chunk) = chunk {
            lines.push(&chunk);
        }
        let mut batch: Vec<Vec<u8>> = std::iter::from_fn(|| lines.next_line()).collect();
        if ended {
            batch.extend(lines.rest());
        }
        for line in batch {
            if shown(&request, &line, show)? {
                return Ok(());
            }
        }
        if ended {
            break;
        }
    }
    Err(CliError::Protocol {
        request,
        detail: "the progress ended before the pull was done".into(),
    })
}

/// Show one progress line; `Ok(true)` once the pull is done, its error if it failed.
fn shown(request: &str, line: &[u8], show: &mut dyn Show) -> Result<bool, CliError> {
    let p: PullProgressView = serde_json::from_slice(line).map_err(|e| CliError::Protocol {
        request: request.to_owned(),
        detail: format!("not a progress line: {e}"),
    })?;
    show.show(&p, line)?;
    match p.status.as_str() {
        "error" => {
            let e = p.error.unwrap_or_default();
            Err(CliError::Stream {
                code: e.code,
                message: crate::error::one_line(&e.message),
            })
        }
        "done" => Ok(true),
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> PullProgressView {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn plain_lines_for_a_pipe() {
        let mut plain = Plain::default();
        let layer = "sha256:0123456789abcdef0123";
        let lines: Vec<Option<String>> = [
            r#"{"status":"resolved","reference":"127.0.0.1:5000/test/busybox:latest","manifest":"sha256:aa","layers":2}"#.to_owned(),
            format!(r#"{{"status":"downloading","layer":"{layer}","current":0,"total":45600000}}"#),
            format!(r#"{{"status":"downloading","layer":"{layer}","current":1000,"total":45600000}}"#),
            format!(r#"{{"status":"downloading","layer":"{layer}","current":12300000,"total":45600000}}"#),
            format!(r#"{{"status":"downloading","layer":"{layer}","current":45600000,"total":45600000}}"#),
            format!(r#"{{"status":"unpacked","layer":"{layer}"}}"#),
            r#"{"status":"exists","layer":"sha256:fedcba9876543210"}"#.to_owned(),
            r#"{"status":"done","reference":"127.0.0.1:5000/test/busybox:latest","id":"sha256:abcd"}"#.to_owned(),
            r#"{"status":"error","error":{"code":"bad_layer","message":"no"}}"#.to_owned(),
        ]
        .iter()
        .map(|l| plain.line(&p(l)))
        .collect();
        let shown: Vec<&str> = lines.iter().flatten().map(String::as_str).collect();
        assert_eq!(
            shown,
            [
                "127.0.0.1:5000/test/busybox:latest: manifest sha256:aa (2 layers)",
                "0123456789ab downloading 0.0/45.6 MB",
                "0123456789ab downloading 12.3/45.6 MB",
                "0123456789ab downloading 45.6/45.6 MB",
                "0123456789ab unpacked",
                "fedcba987654 exists",
                "Pulled 127.0.0.1:5000/test/busybox:latest (id sha256:abcd)",
            ]
        );
        // The second report of the same tenth is not shown again.
        assert_eq!(lines[2], None);
    }

    #[test]
    fn an_empty_layer_is_downloaded_at_once() {
        let mut plain = Plain::default();
        let empty = p(r#"{"status":"downloading","layer":"sha256:00","current":0,"total":0}"#);
        assert_eq!(
            plain.line(&empty).as_deref(),
            Some("00 downloading 0.0/0.0 MB")
        );
        assert_eq!(plain.line(&empty), None);
    }
}
