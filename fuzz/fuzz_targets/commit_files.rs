//! A whole commit's files: the input is split at NUL bytes into files, parsed
//! and validated, built into a fleet (references between objects checked),
//! then every placement is scheduled and its resources selected and rendered
//! for each cluster, as a pass would. Must never panic or hang.
#![no_main]

use gitfleet::repo::{Area, Fleet, parse_file};
use gitfleet::schedule::schedule;
use gitfleet::snapshot::select::selected_manifests;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let files: Vec<_> = data
        .split(|b| *b == 0)
        .take(16)
        .enumerate()
        .map(|(i, bytes)| parse_file(&format!("f{i}.yaml"), bytes, Area::Manifests))
        .collect();
    let fleet = Fleet::build(files.iter());
    for p in fleet.placements.values() {
        let picked = schedule(p, &fleet.clusters);
        let manifests = selected_manifests(&fleet, &p.name);
        for cluster in picked.clusters.iter().take(4) {
            // An error is an answer too; only a panic or a hang is a finding.
            let _ = gitfleet::reconcile::render_for(&fleet, p, cluster, &manifests, 0);
        }
    }
});
