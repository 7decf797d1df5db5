//! afl.rs target `logbatch`: see `targets::logbatch`. Run by `schema/fuzz/run.sh`.

#[path = "../targets.rs"]
mod targets;

fn main() {
    afl::fuzz!(|data: &[u8]| targets::logbatch(data));
}
