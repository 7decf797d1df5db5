//! afl.rs target `manifest`: see `targets::manifest`. Run by `schema/fuzz/run.sh`.

#[path = "../targets.rs"]
mod targets;

fn main() {
    afl::fuzz!(|data: &[u8]| targets::manifest(data));
}
