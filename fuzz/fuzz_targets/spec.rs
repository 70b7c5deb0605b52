//! Any query string through the spec parser: no panic, and a spec that parses names the same
//! variant after a round trip through its canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use pixelmill::engine::spec::WatermarkInfo;
use pixelmill::engine::{Presets, Spec};

/// A watermark `logo` for `wm=` to name.
static PRESETS: LazyLock<Presets> = LazyLock::new(|| {
    let info = WatermarkInfo { digest: "00".to_owned(), width: 30, height: 10 };
    Presets::with_watermarks(HashMap::new(), BTreeMap::from([("logo".to_owned(), info)])).unwrap()
});

fuzz_target!(|query: &str| {
    let presets = &*PRESETS;
    if let Ok(spec) = Spec::parse(query, presets) {
        let canonical = spec.canonical();
        let again = Spec::parse(&canonical, presets)
            .unwrap_or_else(|e| panic!("{query:?} parsed, its canonical form {canonical:?} did not: {e}"));
        assert_eq!(again.canonical(), canonical, "{query:?}");
    }
});
