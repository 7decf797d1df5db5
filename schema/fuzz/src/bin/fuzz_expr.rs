//! afl.rs target `expr`: see `targets::expr`. Run by `schema/fuzz/run.sh`.

#[path = "../targets.rs"]
mod targets;

fn main() {
    afl::fuzz!(|data: &[u8]| targets::expr(data));
}
