//! One manifest file: bytes -> YAML -> typed, validated objects. Must never
//! panic or hang, whatever the bytes.
#![no_main]

use gitfleet::repo::{Area, parse_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for area in [Area::Manifests, Area::Approvals] {
        let parsed = parse_file("fuzz.yaml", data, area);
        for issue in &parsed.issues {
            // Every error is one line naming the file.
            let line = issue.to_string();
            assert!(line.starts_with("fuzz.yaml"), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
});
