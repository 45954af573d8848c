fn main() {
    // sqlx::migrate!() embeds the migrations; a new file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
}
