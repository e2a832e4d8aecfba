//! `--log` and `--log-format`: entries shaped as runc's (logrus) so that callers which
//! parse runc's log file, such as containerd's shim looking for the last error, read ours.
//! Without `--log`, warnings (the runtime-spec's "MUST be logged as a warning": a
//! capability that cannot be granted, say) go to stderr in the same shape; with it, as
//! with runc, the log file has everything and stderr nothing but errors (from `main`):
//! callers such as containerd's shim pass `--log` and hand the container's own stdio to
//! the runtime, where warnings would mix into the container's output.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::LogFormat;

/// Writes one line per event it accepts to a file or stderr.
struct LineLayer {
    out: Mutex<Box<dyn Write + Send>>,
    format: LogFormat,
    accept: fn(&Level) -> bool,
}

/// Collects an event's message and fields.
#[derive(Default)]
struct Fields {
    message: String,
    extra: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.extra
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.extra
                .push((field.name().to_string(), value.to_string()));
        }
    }
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !(self.accept)(event.metadata().level()) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = logrus_level(event.metadata().level());
        let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let line = match self.format {
            LogFormat::Json => {
                let mut obj = serde_json::Map::new();
                obj.insert("level".into(), level.into());
                obj.insert("msg".into(), fields.message.into());
                obj.insert("time".into(), time.into());
                for (k, v) in fields.extra {
                    obj.insert(k, v.into());
                }
                serde_json::Value::Object(obj).to_string()
            }
            LogFormat::Text => {
                let mut line = format!("time={time:?} level={level} msg={:?}", fields.message);
                for (k, v) in fields.extra {
                    line.push_str(&format!(" {k}={v:?}"));
                }
                line
            }
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// A level as logrus (runc) names it.
fn logrus_level(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Install the logger: entries go to `--log` if given, else warnings to stderr.
pub fn init(log: Option<&Path>, format: LogFormat, debug: bool) {
    let file = log.and_then(open);
    let layer = match file {
        Some(file) => LineLayer {
            out: Mutex::new(Box::new(file)),
            format,
            accept: if debug {
                |level| *level <= Level::DEBUG
            } else {
                |level| *level <= Level::INFO
            },
        },
        None => LineLayer {
            out: Mutex::new(Box::new(std::io::stderr())),
            format,
            accept: |level| *level == Level::WARN,
        },
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Open the `--log` file for appending; a failure is said on stderr, not fatal.
fn open(path: &Path) -> Option<File> {
    match OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => Some(file),
        Err(e) => {
            eprintln!("berth-runc: cannot open log file {}: {e}", path.display());
            None
        }
    }
}
