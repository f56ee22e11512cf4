// Rebuild when translations or migrations change: both are embedded at compile time
// (rust-i18n's `i18n!` and sqlx's `migrate!`).
fn main() {
    println!("cargo:rerun-if-changed=locales");
    println!("cargo:rerun-if-changed=migrations");
}
