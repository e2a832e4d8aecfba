//! `--log` and `--log-format`: entries shaped as runc's (logrus) so that callers which
//! parse runc's log file, such as containerd's shim looking for the last error, read ours.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::LogFormat;

/// Writes one line per event to the log file.
struct FileLayer {
    file: Mutex<File>,
    format: LogFormat,
    max_level: Level,
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

impl<S: Subscriber> Layer<S> for FileLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() > self.max_level {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
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
        if let Ok(mut file) = self.file.lock() {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// Install the logger: entries go to `--log` if given; without it they are dropped
/// (errors reach stderr from `main` either way).
pub fn init(log: Option<&Path>, format: LogFormat, debug: bool) {
    let Some(path) = log else {
        return;
    };
    let file = match OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("berth-runc: cannot open log file {}: {e}", path.display());
            return;
        }
    };
    let layer = FileLayer {
        file: Mutex::new(file),
        format,
        max_level: if debug { Level::DEBUG } else { Level::INFO },
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
