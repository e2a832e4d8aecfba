//! Control groups: detection of v1/v2 and the per-container cgroup manager.
