//! Snapshot indexing benchmark.
//!
//! Generates a fleet repository of 10,000 commits over 5,000 manifests (20
//! namespaces x 250 ConfigMaps, one placement per namespace; every commit changes
//! one manifest or a doc file) with `git fast-import`, then measures, in the same
//! run: `git log --first-parent --raw` over it, gitfleet's full indexing, and the
//! cost of indexing one new commit. Run: `cargo bench --bench index`
//! (`GITFLEET_BENCH_REPO=DIR` keeps the generated repository in DIR and reuses it).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitfleet::snapshot::Indexer;

const NAMESPACES: usize = 20;
const PER_NAMESPACE: usize = 250;
const NEW_COMMITS: usize = 50;
/// Full indexing and `git log` runs; the medians are reported.
const ROUNDS: usize = 9;

/// Commits in the generated history (`GITFLEET_BENCH_COMMITS` overrides, for profiling).
fn commits() -> usize {
    std::env::var("GITFLEET_BENCH_COMMITS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

fn configmap(ns: usize, i: usize, version: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: ns-{ns}\n  labels:\n    app: app-{i}\ndata:\n  version: \"{version}\"\n  payload: \"{}\"\n",
        "x".repeat(200)
    )
}

fn namespace_file(ns: usize) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-{ns}\n---\napiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: place-{ns}\nspec:\n  resourceSelectors:\n  - {{group: \"\", version: v1, kind: Namespace, name: ns-{ns}}}\n  strategy:\n    type: External\n"
    )
}

/// A small deterministic PRNG (xorshift), so every run builds the same history.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

fn data(out: &mut Vec<u8>, content: &str) {
    writeln!(out, "data {}", content.len()).unwrap();
    out.extend_from_slice(content.as_bytes());
    out.push(b'\n');
}

fn generate(dir: &std::path::Path) -> std::path::PathBuf {
    let repo = dir.join("fleet.git");
    let ok = Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(&repo).status().unwrap();
    assert!(ok.success());
    let mut stream = Vec::new();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut versions = vec![0usize; NAMESPACES * PER_NAMESPACE];
    for c in 0..commits() {
        writeln!(stream, "commit refs/heads/main").unwrap();
        writeln!(stream, "committer Dev <dev@example.com> {} +0000", 1_700_000_000 + c * 60).unwrap();
        data(&mut stream, &format!("change {c}"));
        if c == 0 {
            for ns in 0..NAMESPACES {
                writeln!(stream, "M 100644 inline fleet/ns-{ns}/namespace.yaml").unwrap();
                data(&mut stream, &namespace_file(ns));
                for i in 0..PER_NAMESPACE {
                    writeln!(stream, "M 100644 inline fleet/ns-{ns}/cm-{i}.yaml").unwrap();
                    data(&mut stream, &configmap(ns, i, 0));
                }
            }
        } else if c % 10 == 0 {
            writeln!(stream, "M 100644 inline docs/notes-{}.md", c % 7).unwrap();
            data(&mut stream, &format!("note {c}\n"));
        } else {
            let k = rng.next() % versions.len();
            versions[k] += 1;
            let (ns, i) = (k / PER_NAMESPACE, k % PER_NAMESPACE);
            writeln!(stream, "M 100644 inline fleet/ns-{ns}/cm-{i}.yaml").unwrap();
            data(&mut stream, &configmap(ns, i, versions[k]));
        }
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&repo)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    // Pack like a real clone would be.
    let ok = Command::new("git").args(["gc", "-q"]).current_dir(&repo).status().unwrap();
    assert!(ok.success());
    repo
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // GITFLEET_BENCH_REPO keeps the generated repository there (for profiling).
    let path = match std::env::var_os("GITFLEET_BENCH_REPO").map(std::path::PathBuf::from) {
        Some(keep) if keep.join("fleet.git").exists() => keep.join("fleet.git"),
        Some(keep) => generate(&keep),
        None => generate(dir.path()),
    };
    println!(
        "generated {} commits over {} manifests in {:.1} s",
        commits(),
        NAMESPACES * PER_NAMESPACE,
        started.elapsed().as_secs_f64()
    );

    // Rounds alternate between the two, so that both see the same machine.
    let repo = git2::Repository::open_bare(&path).unwrap();
    let tip = repo.refname_to_id("refs/heads/main").unwrap();
    let (mut git_log, mut full) = (Vec::new(), Vec::new());
    let (mut saves, mut loads) = (Vec::new(), Vec::new());
    let saved = dir.path().join("snapshot-index.json");
    let mut indexer = None;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let out = Command::new("git")
            .args(["log", "--first-parent", "--raw", "main"])
            .current_dir(&path)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(out.success());
        git_log.push(t.elapsed());
        let t = Instant::now();
        let mut ix = Indexer::new(Some("fleet"));
        ix.sync(&repo, tip).unwrap();
        full.push(t.elapsed());
        // What a restart does instead: save after the pass, load at start.
        let t = Instant::now();
        ix.save(&saved, "bench").unwrap();
        saves.push(t.elapsed());
        let t = Instant::now();
        let loaded = Indexer::load(&repo, &saved, Some("fleet"), "bench").unwrap();
        loads.push(t.elapsed());
        assert_eq!(loaded.describe(), ix.describe(), "the loaded index is the one saved");
        indexer = Some(ix);
    }
    let mut ix = indexer.unwrap();
    let snapshots: usize = ix.placements().map(|(_, s)| s.len()).sum();
    assert_eq!(ix.commits_indexed(), commits());

    // One new commit at a time, as the reconciler sees pushes.
    let mut one = Vec::new();
    let mut parent = repo.find_commit(tip).unwrap();
    let sig = git2::Signature::now("Dev", "dev@example.com").unwrap();
    for n in 0..NEW_COMMITS {
        let (ns, i) = (n % NAMESPACES, n * 7 % PER_NAMESPACE);
        let blob = repo.blob(configmap(ns, i, 100_000 + n).as_bytes()).unwrap();
        let mut update = git2::build::TreeUpdateBuilder::new();
        update.upsert(format!("fleet/ns-{ns}/cm-{i}.yaml"), blob, git2::FileMode::Blob);
        let tree = update.create_updated(&repo, &parent.tree().unwrap()).unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let c = repo.commit(Some("refs/heads/main"), &sig, &sig, "new", &tree, &[&parent]).unwrap();
        parent = repo.find_commit(c).unwrap();
        let before: usize = ix.placements().map(|(_, s)| s.len()).sum();
        let t = Instant::now();
        assert_eq!(ix.sync(&repo, c).unwrap(), 1);
        one.push(t.elapsed());
        let after: usize = ix.placements().map(|(_, s)| s.len()).sum();
        assert_eq!(after, before + 1, "each new commit is a new snapshot of one placement");
    }
    // Leave a kept repository as generated.
    repo.reference("refs/heads/main", tip, true, "benchmark done").unwrap();
    let one_max = *one.iter().max().unwrap();
    let (g, f, o) = (median(git_log), median(full), median(one));
    let (sv, ld) = (median(saves), median(loads));
    let size = std::fs::metadata(&saved).unwrap().len();
    println!("snapshots indexed: {snapshots} over {NAMESPACES} placements");
    println!("| measurement | median of {ROUNDS} | goal |");
    println!("|---|---|---|");
    println!("| `git log --first-parent --raw` (10,000 commits) | {} | reference |", ms(g));
    println!(
        "| gitfleet full indexing (10,000 commits) | {} ({:.2}x git log) | within 1.5x |",
        ms(f),
        f.as_secs_f64() / g.as_secs_f64()
    );
    println!(
        "| start from a saved index ({:.1} MB file) | {} ({:.1}% of full indexing) | < 10% |",
        size as f64 / 1e6,
        ms(ld),
        ld.as_secs_f64() * 100.0 / f.as_secs_f64()
    );
    println!("| save the index after a pass | {} | reference |", ms(sv));
    println!("| gitfleet one new commit ({NEW_COMMITS} runs, max {}) | {} | < 20 ms |", ms(one_max), ms(o));
}
