//! afl.rs target `frame`: see `targets::frame`. Run by `schema/fuzz/run.sh`.

#[path = "../targets.rs"]
mod targets;

fn main() {
    afl::fuzz!(|data: &[u8]| targets::frame(data));
}
