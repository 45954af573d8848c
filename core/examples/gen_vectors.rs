//! Writes the golden vectors of DESIGN section 4 to `core/tests/vectors/`.
//!
//! ```text
//! cargo run -p licentia-core --example gen_vectors
//! ```
//!
//! The output is fully determined by a fixed seed; `cargo test --test vectors` checks that the
//! checked-in files are byte-for-byte what this produces.

#[path = "../tests/golden/mod.rs"]
mod golden;

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    std::fs::create_dir_all(&dir)?;
    let g = golden::generate();
    std::fs::write(dir.join("signed.json"), g.signed_json())?;
    std::fs::write(dir.join("offline.json"), g.offline_json())?;
    println!(
        "wrote {} signed and {} offline vectors to {}",
        g.signed.len(),
        g.offline.len(),
        dir.display()
    );
    Ok(())
}
