//! The images service's metrics (through the `metrics` crate; the daemon's exporter
//! renders them).

/// Bytes of layer blobs downloaded from registries.
pub const PULL_BYTES: &str = "berth_image_pull_bytes_total";
/// Pulls that completed.
pub const PULLS: &str = "berth_image_pulls_total";
/// Pulls that failed.
pub const PULL_FAILURES: &str = "berth_image_pull_failures_total";
/// Time a pull took, resolve to record.
pub const PULL_DURATION: &str = "berth_image_pull_duration_seconds";
/// Bytes held in the content store (set at scrape time).
pub const STORE_BYTES: &str = "berth_image_store_bytes";
/// Images recorded (set at scrape time).
pub const IMAGES: &str = "berth_images";

/// Describe every metric above to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        PULL_BYTES,
        metrics::Unit::Bytes,
        "Bytes of layer blobs downloaded from registries."
    );
    metrics::describe_counter!(PULLS, "Image pulls that completed.");
    metrics::describe_counter!(PULL_FAILURES, "Image pulls that failed.");
    metrics::describe_histogram!(
        PULL_DURATION,
        metrics::Unit::Seconds,
        "Time an image pull took, from resolving the name to recording the image."
    );
    metrics::describe_gauge!(
        STORE_BYTES,
        metrics::Unit::Bytes,
        "Bytes held in the image content store."
    );
    metrics::describe_gauge!(IMAGES, "Images recorded.");
}

/// Set the scrape-time gauges from `images`.
pub fn observe(images: &crate::Images) {
    if let Ok(bytes) = images.store_size() {
        metrics::gauge!(STORE_BYTES).set(bytes as f64);
    }
    metrics::gauge!(IMAGES).set(images.list().len() as f64);
}
