//! `config`: a configuration file's text ([`Config::from_toml_str`], the file layer of
//! `Config::load` without the environment or the filesystem).
//!
//! Checks: any text is a configuration or a clear error; an accepted one cannot make the
//! gateway panic later (tokio's intervals panic on a zero period, and a duration added to
//! the clock must not overflow it), its derived paths and redacted `Debug` are computable,
//! and it writes out as TOML that loads to the same configuration.

use std::time::{Duration, Instant};

use entry::config::Config;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::from_toml_str(text) else { return };
    // The repeating timers: tokio's `interval` panics on a zero period, and a zero sleep
    // between sweeps would spin.
    for (key, period) in [
        ("gateway.ping_interval", config.gateway.ping_interval),
        ("recording.flush_interval", config.recording.flush_interval),
        ("reaper.sweep_interval", config.reaper.sweep_interval),
    ] {
        assert!(!period.is_zero(), "{key} = 0 was accepted");
    }
    let now = Instant::now();
    for (key, duration, _) in config.durations() {
        assert!(now.checked_add(duration).is_some(), "{key} = {duration:?} overflows the clock");
        assert!(duration.checked_add(Duration::from_secs(3600)).is_some(), "{key} = {duration:?} overflows");
    }
    let shown = format!("{config:?}");
    let _ = (config.store_url(), config.recordings_dir(), config.spool_dir());
    let written = toml::to_string(&config).expect("a loaded configuration writes out as TOML");
    let again = Config::from_toml_str(&written).expect("a written configuration loads");
    assert_eq!(format!("{again:?}"), shown, "{written}");
}
