//! Any query string through the spec parser: no panic, and a spec that parses names the same
//! variant after a round trip through its canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixelmill::engine::{Presets, Spec};

fuzz_target!(|query: &str| {
    let presets = Presets::default();
    if let Ok(spec) = Spec::parse(query, &presets) {
        let canonical = spec.canonical();
        let again = Spec::parse(&canonical, &presets)
            .unwrap_or_else(|e| panic!("{query:?} parsed, its canonical form {canonical:?} did not: {e}"));
        assert_eq!(again.canonical(), canonical, "{query:?}");
    }
});
