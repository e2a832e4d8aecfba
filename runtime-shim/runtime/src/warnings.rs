//! Warnings of a cloned child (a container's init, an exec'd process): collected while
//! it sets up and sent to the runtime over the setup channel, which logs them. The child
//! cannot log them itself: it closed the descriptors it inherited, the runtime's log
//! file among them, and its stderr is the container's.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Metadata, Subscriber};

/// Keeps the message of every warning event.
struct Collector(Arc<Mutex<Vec<String>>>);

impl Subscriber for Collector {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() == Level::WARN
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text::default();
        event.record(&mut text);
        if let Ok(mut warnings) = self.0.lock() {
            warnings.push(text.0);
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// An event as one line: its message, then its other fields as `key=value`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

/// Run `f` (in the calling thread) and return, with its result, the warnings it logged
/// through `tracing`, in order.
pub fn collect<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let store = Arc::new(Mutex::new(Vec::new()));
    let result = tracing::subscriber::with_default(Collector(store.clone()), f);
    let warnings = store.lock().map(|mut w| std::mem::take(&mut *w));
    (result, warnings.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn warnings_are_collected_in_order_and_nothing_else() {
        let (n, warnings) = super::collect(|| {
            tracing::info!("not this");
            tracing::warn!("first");
            tracing::error!("nor this");
            tracing::warn!(set = "bounding", "second");
            2
        });
        assert_eq!(n, 2);
        assert_eq!(warnings, ["first", "second set=\"bounding\""]);
    }
}
