//! afl.rs target `exec_line`: see `targets::exec_line`. Run by `schema/fuzz/run.sh`.

#[path = "../targets.rs"]
mod targets;

fn main() {
    afl::fuzz!(|data: &[u8]| targets::exec_line(data));
}
