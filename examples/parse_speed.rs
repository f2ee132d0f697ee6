use std::time::Instant;
fn main() {
    let doc = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-1\n  namespace: ns-1\n  labels:\n    app: app-1\ndata:\n  version: \"3\"\n  payload: \"{}\"\n",
        "x".repeat(200)
    );
    let n = 20000;
    let t = Instant::now();
    for _ in 0..n {
        let _ = gitfleet::yaml::parse_documents(doc.as_bytes()).unwrap();
    }
    println!("parse_documents: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = Instant::now();
    for _ in 0..n {
        let _: Vec<serde_json::Value> = serde_saphyr::from_multiple(&doc).unwrap();
    }
    println!("from_multiple default opts Value: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = Instant::now();
    for _ in 0..n {
        let _ = gitfleet::repo::parse_file("a.yaml", doc.as_bytes(), gitfleet::repo::Area::Manifests);
    }
    println!("parse_file: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}
